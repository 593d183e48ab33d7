//! Logging through defmt when the `defmt` feature is on, and nowhere otherwise.

macro_rules! info {
    ($($t:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::info!($($t)*);
        #[cfg(not(feature = "defmt"))]
        crate::log::discard!($($t)*);
    }};
}

macro_rules! warning {
    ($($t:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::warn!($($t)*);
        #[cfg(not(feature = "defmt"))]
        crate::log::discard!($($t)*);
    }};
}

macro_rules! error {
    ($($t:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::error!($($t)*);
        #[cfg(not(feature = "defmt"))]
        crate::log::discard!($($t)*);
    }};
}

/// Evaluates the arguments by reference so they count as used.
#[cfg(not(feature = "defmt"))]
macro_rules! discard {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        $(let _ = &$arg;)*
    }};
}

#[cfg(not(feature = "defmt"))]
pub(crate) use discard;
pub(crate) use {error, info, warning};
