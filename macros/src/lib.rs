//! The `#[atexit::register]` attribute. Use it through the `atexit` crate.
//!
//! Written on `proc_macro` alone, without `syn` and `quote`: the attribute
//! only has to find a function's name and refuse a few shapes, and `syn`
//! would be most of the crate's build time.

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

const TAKES_NO_ARGUMENTS: &str = "#[atexit::register] takes no arguments; to pass values at exit, \
     call atexit::register_with(func, (args,)) from your code";
const NOT_A_FUNCTION: &str = "#[atexit::register] goes on a function: `fn name() { .. }`";
const ASYNC: &str = "#[atexit::register] cannot register an async fn: nothing polls a future at \
     exit; make it a plain fn";
const GENERIC: &str = "#[atexit::register] cannot register a generic fn: there is no type to call \
     it with at exit";
const PARAMETERS: &str = "#[atexit::register] registers functions without parameters, like \
     Python's decorator; to pass values, call atexit::register_with(func, (args,)) instead";
const UNSAFE: &str = "#[atexit::register] cannot register an unsafe fn: nothing could uphold its \
     contract at exit";
const RETURNS_VALUE: &str = "#[atexit::register] registers functions that return (); nothing \
     receives a value at exit";

/// Registers a function with no parameters as an exit handler before `main`
/// starts. See `atexit::register` (the attribute) in the `atexit` crate.
#[proc_macro_attribute]
pub fn register(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(first) = attr.into_iter().next() {
        return compile_error(first.span(), TAKES_NO_ARGUMENTS);
    }
    match registrable_name(item.clone()) {
        Ok(name) => {
            let mut expanded = item;
            expanded.extend(registration(&name));
            expanded
        }
        // Only the error, as a refused item must not compile further.
        Err((span, message)) => compile_error(span, message),
    }
}

/// Where and why an item is refused.
type Refusal = (Span, &'static str);

/// The name of the function `item`, if it can be an exit handler. The
/// checks run in a fixed order so that an item breaking several rules
/// always gets the same message.
fn registrable_name(item: TokenStream) -> Result<Ident, Refusal> {
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    let not_a_function = || {
        let span = tokens.first().map_or_else(Span::call_site, TokenTree::span);
        (span, NOT_A_FUNCTION)
    };
    let header = Header::read(&tokens).ok_or_else(not_a_function)?;
    if let Some(span) = header.asyncness {
        return Err((span, ASYNC));
    }
    let rest = &tokens[header.len..];
    // A generic parameter list comes right after the name.
    if let Some(TokenTree::Punct(open)) = rest.first() {
        if open.as_char() == '<' {
            return Err((open.span(), GENERIC));
        }
    }
    let (parameters, rest) = match rest.split_first() {
        Some((TokenTree::Group(group), rest)) if group.delimiter() == Delimiter::Parenthesis => {
            (group.stream(), rest)
        }
        _ => return Err(not_a_function()),
    };
    // What is left is `-> Type`, `where ..`, each optional, and the body.
    let between = match rest.split_last() {
        Some((TokenTree::Group(body), between)) if body.delimiter() == Delimiter::Brace => between,
        // `fn name();`: a declaration, not a function.
        _ => return Err(not_a_function()),
    };
    if let Some(clause) = between.iter().find(|token| is_word(token, "where")) {
        return Err((clause.span(), GENERIC));
    }
    if let Some(first) = parameters.into_iter().next() {
        return Err((first.span(), PARAMETERS));
    }
    if let Some(span) = header.unsafety {
        return Err((span, UNSAFE));
    }
    // `between` is now `-> Type` or nothing; the message points at the type.
    if let Some(return_type) = between.get(2) {
        return Err((return_type.span(), RETURNS_VALUE));
    }
    Ok(header.name)
}

/// The part of a function item up to its name: attributes, visibility,
/// qualifiers, `fn`, the name.
struct Header {
    name: Ident,
    asyncness: Option<Span>,
    unsafety: Option<Span>,
    /// How many tokens it takes.
    len: usize,
}

impl Header {
    /// `None` when `tokens` is not a function item (a struct, a `const`, an
    /// `extern` block, ..).
    fn read(tokens: &[TokenTree]) -> Option<Header> {
        let mut at = skip_attributes(tokens, 0);
        at = skip_visibility(tokens, at);
        let (mut asyncness, mut unsafety) = (None, None);
        loop {
            let TokenTree::Ident(word) = tokens.get(at)? else {
                return None;
            };
            at += 1;
            match word.to_string().as_str() {
                "fn" => break,
                "async" => asyncness = Some(word.span()),
                "unsafe" => unsafety = Some(word.span()),
                "const" | "safe" => {}
                // `extern "C" fn`: skip the ABI string.
                "extern" => {
                    if let Some(TokenTree::Literal(_)) = tokens.get(at) {
                        at += 1;
                    }
                }
                _ => return None,
            }
        }
        let TokenTree::Ident(name) = tokens.get(at)? else {
            return None;
        };
        Some(Header {
            name: name.clone(),
            asyncness,
            unsafety,
            len: at + 1,
        })
    }
}

/// Past any `#[..]` (doc comments arrive as `#[doc = ".."]`).
fn skip_attributes(tokens: &[TokenTree], mut at: usize) -> usize {
    while let (Some(TokenTree::Punct(hash)), Some(TokenTree::Group(group))) =
        (tokens.get(at), tokens.get(at + 1))
    {
        if hash.as_char() != '#' || group.delimiter() != Delimiter::Bracket {
            break;
        }
        at += 2;
    }
    at
}

/// Past `pub`, `pub(crate)`, `pub(in path)`.
fn skip_visibility(tokens: &[TokenTree], mut at: usize) -> usize {
    if tokens.get(at).is_some_and(|token| is_word(token, "pub")) {
        at += 1;
        if let Some(TokenTree::Group(group)) = tokens.get(at) {
            if group.delimiter() == Delimiter::Parenthesis {
                at += 1;
            }
        }
    }
    at
}

fn is_word(token: &TokenTree, word: &str) -> bool {
    matches!(token, TokenTree::Ident(ident) if ident.to_string() == word)
}

/// A constructor, run before `main`, that registers the function `name`.
fn registration(name: &Ident) -> TokenStream {
    // `unsafe`: ctor's acknowledgement that this runs before `main`;
    // `atexit::register` needs nothing that `main` sets up.
    const TEMPLATE: &str = "
        ::atexit::__private::ctor! {
            #[ctor(unsafe)]
            #[allow(non_snake_case)]
            #[doc(hidden)]
            fn REGISTRAR() {
                ::atexit::register(NAME);
            }
        }";
    // `r#match` has the registrar `__atexit_register_match`.
    let bare = name.to_string();
    let bare = bare.strip_prefix("r#").unwrap_or(&bare);
    // Both at the name, so that an error in the registration points there.
    let registrar = Ident::new(&format!("__atexit_register_{bare}"), name.span());
    let template: TokenStream = TEMPLATE.parse().expect("the template is valid Rust");
    substitute(template, &[("REGISTRAR", &registrar), ("NAME", name)])
}

/// `stream` with each placeholder word replaced by its identifier.
fn substitute(stream: TokenStream, placeholders: &[(&str, &Ident)]) -> TokenStream {
    stream
        .into_iter()
        .map(|token| match token {
            TokenTree::Ident(word) => {
                let word_text = word.to_string();
                let found = placeholders.iter().find(|(key, _)| *key == word_text);
                TokenTree::Ident(found.map_or(word, |(_, ident)| (*ident).clone()))
            }
            TokenTree::Group(group) => {
                let mut replaced =
                    Group::new(group.delimiter(), substitute(group.stream(), placeholders));
                replaced.set_span(group.span());
                TokenTree::Group(replaced)
            }
            other => other,
        })
        .collect()
}

/// `::core::compile_error! { "message" }` with every token at `span`, which
/// is where rustc then reports the error. Braces, because in item position
/// a macro call in parentheses would need a `;`.
fn compile_error(span: Span, message: &str) -> TokenStream {
    let punct = |ch, spacing| {
        let mut punct = Punct::new(ch, spacing);
        punct.set_span(span);
        TokenTree::Punct(punct)
    };
    let mut literal = Literal::string(message);
    literal.set_span(span);
    let mut arguments = Group::new(Delimiter::Brace, TokenTree::Literal(literal).into());
    arguments.set_span(span);
    [
        punct(':', Spacing::Joint),
        punct(':', Spacing::Alone),
        TokenTree::Ident(Ident::new("core", span)),
        punct(':', Spacing::Joint),
        punct(':', Spacing::Alone),
        TokenTree::Ident(Ident::new("compile_error", span)),
        punct('!', Spacing::Alone),
        TokenTree::Group(arguments),
    ]
    .into_iter()
    .collect()
}
