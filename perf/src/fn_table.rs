//! `table!(f)`: the 256 instances `f::<0>` .. `f::<255>` of a function
//! generic over a `const I: usize`, as a 16 x 16 array. Each instance names
//! a distinct function type, which is what `atexit::unregister` keys on.
//! Shared by `atexit-perf` and the criterion benches.

macro_rules! row {
    ($f:ident, $hi:literal) => {
        [
            $f::<{ $hi * 16 }>,
            $f::<{ $hi * 16 + 1 }>,
            $f::<{ $hi * 16 + 2 }>,
            $f::<{ $hi * 16 + 3 }>,
            $f::<{ $hi * 16 + 4 }>,
            $f::<{ $hi * 16 + 5 }>,
            $f::<{ $hi * 16 + 6 }>,
            $f::<{ $hi * 16 + 7 }>,
            $f::<{ $hi * 16 + 8 }>,
            $f::<{ $hi * 16 + 9 }>,
            $f::<{ $hi * 16 + 10 }>,
            $f::<{ $hi * 16 + 11 }>,
            $f::<{ $hi * 16 + 12 }>,
            $f::<{ $hi * 16 + 13 }>,
            $f::<{ $hi * 16 + 14 }>,
            $f::<{ $hi * 16 + 15 }>,
        ]
    };
}

macro_rules! table {
    ($f:ident) => {
        [
            row!($f, 0),
            row!($f, 1),
            row!($f, 2),
            row!($f, 3),
            row!($f, 4),
            row!($f, 5),
            row!($f, 6),
            row!($f, 7),
            row!($f, 8),
            row!($f, 9),
            row!($f, 10),
            row!($f, 11),
            row!($f, 12),
            row!($f, 13),
            row!($f, 14),
            row!($f, 15),
        ]
    };
}
