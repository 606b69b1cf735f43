//! [`Args`]: the argument tuples that `register_with` passes to a function,
//! Python's `register(func, *args)`.

mod sealed {
    pub trait Sealed {}
}

/// A tuple of 0 to 8 values that a function can be called with at exit.
///
/// Implemented for `()`, `(A,)`, `(A, B)`, ... up to eight elements, for any
/// `F` that takes those values by value. Each value must be `Send +
/// 'static`: it is kept until the handler runs, possibly on another thread.
///
/// ```
/// fn goodbye(name: &str, adjective: &str) {
///     println!("Goodbye {name}, it was {adjective} to meet you.");
/// }
/// atexit::register_with(goodbye, ("Donny", "nice"));
/// # atexit::clear();
/// ```
pub trait Args<F>: sealed::Sealed + Send + 'static {
    /// Calls `func` with these values.
    fn call(self, func: F);
}

macro_rules! impl_args {
    ($($name:ident),*) => {
        impl<$($name: Send + 'static),*> sealed::Sealed for ($($name,)*) {}

        impl<Func, $($name: Send + 'static),*> Args<Func> for ($($name,)*)
        where
            Func: FnOnce($($name),*),
        {
            #[allow(non_snake_case)]
            fn call(self, func: Func) {
                let ($($name,)*) = self;
                func($($name),*)
            }
        }
    };
}

impl_args!();
impl_args!(A);
impl_args!(A, B);
impl_args!(A, B, C);
impl_args!(A, B, C, D);
impl_args!(A, B, C, D, E);
impl_args!(A, B, C, D, E, G);
impl_args!(A, B, C, D, E, G, H);
impl_args!(A, B, C, D, E, G, H, I);
