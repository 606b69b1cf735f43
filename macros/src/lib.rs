//! The `#[atexit::register]` attribute. Use it through the `atexit` crate.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Error, Item, ItemFn};

/// Registers a function with no parameters as an exit handler before `main`
/// starts. See `atexit::register` (the attribute) in the `atexit` crate.
#[proc_macro_attribute]
pub fn register(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return Error::new(
            attr.span(),
            "#[atexit::register] takes no arguments; to pass values at exit, call \
             atexit::register_with(func, (args,)) from your code",
        )
        .to_compile_error()
        .into();
    }
    let function = match parse_macro_input!(item as Item) {
        Item::Fn(function) => function,
        other => {
            return Error::new(
                other.span(),
                "#[atexit::register] goes on a function: `fn name() { .. }`",
            )
            .to_compile_error()
            .into()
        }
    };
    match expand(function) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(function: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let signature = &function.sig;
    if let Some(asyncness) = signature.asyncness {
        return Err(Error::new(
            asyncness.span(),
            "#[atexit::register] cannot register an async fn: nothing polls a future at exit; \
             make it a plain fn",
        ));
    }
    if !signature.generics.params.is_empty() || signature.generics.where_clause.is_some() {
        return Err(Error::new(
            signature.generics.span(),
            "#[atexit::register] cannot register a generic fn: there is no type to call it \
             with at exit",
        ));
    }
    if !signature.inputs.is_empty() {
        return Err(Error::new(
            signature.inputs.span(),
            "#[atexit::register] registers functions without parameters, like Python's \
             decorator; to pass values, call atexit::register_with(func, (args,)) instead",
        ));
    }
    if signature.unsafety.is_some() {
        return Err(Error::new(
            signature.unsafety.span(),
            "#[atexit::register] cannot register an unsafe fn: nothing could uphold its \
             contract at exit",
        ));
    }
    if let syn::ReturnType::Type(_, ty) = &signature.output {
        return Err(Error::new(
            ty.span(),
            "#[atexit::register] registers functions that return (); nothing receives a \
             value at exit",
        ));
    }
    let name = &signature.ident;
    let registrar = format_ident!("__atexit_register_{}", name);
    Ok(quote! {
        #function

        // `unsafe`: ctor's acknowledgement that this runs before `main`;
        // `atexit::register` needs nothing that `main` sets up.
        ::atexit::__private::ctor! {
            #[ctor(unsafe)]
            #[allow(non_snake_case)]
            #[doc(hidden)]
            fn #registrar() {
                ::atexit::register(#name);
            }
        }
    })
}
