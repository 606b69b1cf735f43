//! [`Callback`]: a type-erased `FnOnce() + Send` in two words, a table of
//! functions for its type and one word of data.
//!
//! `Box<dyn FnOnce()>` is also two words, but it allocates for any closure
//! with captures. Here a closure of at most one word (an `Arc`, a `u64`, a
//! reference) lives in the data word itself; only larger ones are boxed. A
//! zero-sized closure (a function item) leaves the word unused, and the
//! handler store keeps its per-function list link there (see `store`).

use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::ptr;

/// The data word. `MaybeUninit` keeps whatever a closure stores in it,
/// pointer provenance included, when the word is moved.
type Word = MaybeUninit<*mut ()>;

/// What a [`Callback`] holds, besides its code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A closure whose bytes are in the word.
    Inline,
    /// A zero-sized closure: the word is free for links.
    ZeroSized,
    /// A boxed closure: the word is the box.
    Boxed,
    /// No closure at all: the place of a removed handler in the store,
    /// which may still hold its list link in the word.
    Removed,
}

struct Table {
    /// Calls the closure, consuming it. Unsafe: the word must hold a closure
    /// of this table's type that has not been consumed.
    call: unsafe fn(Word),
    /// Drops the closure; same contract as `call`.
    drop: unsafe fn(Word),
    kind: Kind,
}

struct Tables<F>(F);

impl<F: FnOnce() + Send + 'static> Tables<F> {
    const INLINE: Table = Table {
        call: call_inline::<F>,
        drop: drop_inline::<F>,
        kind: if size_of::<F>() == 0 {
            Kind::ZeroSized
        } else {
            Kind::Inline
        },
    };
    const BOXED: Table = Table {
        call: call_boxed::<F>,
        drop: drop_boxed::<F>,
        kind: Kind::Boxed,
    };
}

static REMOVED: Table = Table {
    call: nothing,
    drop: nothing,
    kind: Kind::Removed,
};

fn nothing(_: Word) {}

/// Whether an `F` fits in the word, alignment included.
const fn fits_inline<F>() -> bool {
    size_of::<F>() <= size_of::<Word>() && align_of::<F>() <= align_of::<Word>()
}

unsafe fn call_inline<F: FnOnce()>(word: Word) {
    // SAFETY: `Callback::new` wrote an `F` at the start of this word (it
    // fits and is no more aligned), and the caller guarantees it is unused.
    let f = unsafe { ptr::read(word.as_ptr().cast::<F>()) };
    f()
}

unsafe fn drop_inline<F: FnOnce()>(word: Word) {
    // SAFETY: as in `call_inline`.
    drop(unsafe { ptr::read(word.as_ptr().cast::<F>()) });
}

unsafe fn call_boxed<F: FnOnce()>(word: Word) {
    // SAFETY: `Callback::new` stored `Box::into_raw` of a `Box<F>` here,
    // and the caller guarantees it was not taken back since.
    let f = unsafe { Box::from_raw(word.assume_init().cast::<F>()) };
    f()
}

unsafe fn drop_boxed<F: FnOnce()>(word: Word) {
    // SAFETY: as in `call_boxed`.
    drop(unsafe { Box::from_raw(word.assume_init().cast::<F>()) });
}

/// A registered handler, type-erased; `Send` because only `Send` closures
/// go in. Calling consumes it; dropping an uncalled one drops the closure.
pub(crate) struct Callback {
    table: &'static Table,
    word: Word,
}

// SAFETY: a `Callback` owns a closure that was `Send` when it went in (or
// nothing, for a removed one); the table is immutable static data.
unsafe impl Send for Callback {}

impl Callback {
    /// Type-erases `f`, in the word if it fits, else in a box.
    #[inline]
    pub(crate) fn new<F: FnOnce() + Send + 'static>(f: F) -> Callback {
        let mut word = Word::new(ptr::null_mut());
        if fits_inline::<F>() {
            // SAFETY: `F` fits in the word and is no more aligned than it.
            unsafe { ptr::write(word.as_mut_ptr().cast::<F>(), f) };
            Callback {
                table: &Tables::<F>::INLINE,
                word,
            }
        } else {
            word.write(Box::into_raw(Box::new(f)).cast::<()>());
            Callback {
                table: &Tables::<F>::BOXED,
                word,
            }
        }
    }

    /// Whether the word of a zero-sized closure is free to hold links
    /// (`has_free_word`): on targets with 64-bit words.
    pub(crate) const ZERO_SIZED_WORD_IS_FREE: bool = size_of::<Word>() >= 8;

    /// What stays in the store where this callback was: no closure, and
    /// the same two numbers if the word is free, else both `u32::MAX`
    /// ("none").
    pub(crate) fn removed_in_place(&self) -> Callback {
        let word = if self.has_free_word() {
            self.word
        } else {
            Word::new(ptr::without_provenance_mut(usize::MAX))
        };
        Callback {
            table: &REMOVED,
            word,
        }
    }

    /// Whether this is the place of a removed handler rather than a handler.
    #[cfg(test)]
    fn is_removed(&self) -> bool {
        self.table.kind == Kind::Removed
    }

    /// Whether the word is free to hold links (a zero-sized closure or a
    /// removed handler's place).
    #[inline]
    pub(crate) fn has_free_word(&self) -> bool {
        // Two 32-bit links need a 64-bit word; elsewhere the store keeps
        // every link in its side map.
        Self::ZERO_SIZED_WORD_IS_FREE && matches!(self.table.kind, Kind::ZeroSized | Kind::Removed)
    }

    /// The two numbers kept in a word known to be free.
    #[inline]
    pub(crate) fn free_word_links(&self) -> (u32, u32) {
        debug_assert!(self.has_free_word());
        let packed = self.word_address() as u64;
        ((packed >> 32) as u32, packed as u32)
    }

    /// Keeps two numbers in a word known to be free.
    #[inline]
    pub(crate) fn set_free_word_links(&mut self, first: u32, second: u32) {
        debug_assert!(self.has_free_word());
        let packed = (u64::from(first) << 32) | u64::from(second);
        self.word = Word::new(ptr::without_provenance_mut(packed as usize));
    }

    fn word_address(&self) -> usize {
        // SAFETY: only called on free words, which `new`, `removed_in_place`
        // and `set_free_word_links` always initialise (a zero-sized closure writes no
        // bytes over the null that `new` put first).
        unsafe { self.word.assume_init() }.addr()
    }

    /// Calls the closure, consuming it.
    #[inline]
    pub(crate) fn call(self) {
        let this = ManuallyDrop::new(self);
        // SAFETY: the table was made for the closure in the word, and
        // `ManuallyDrop` keeps `Drop` from touching it again.
        unsafe { (this.table.call)(this.word) }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        // SAFETY: an uncalled callback still owns its closure (`call`
        // consumes `self` without running this).
        unsafe { (self.table.drop)(self.word) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counted() -> (Arc<AtomicUsize>, impl FnOnce() + Send + 'static) {
        let count = Arc::new(AtomicUsize::new(0));
        let inner = Arc::clone(&count);
        (count, move || {
            inner.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn every_size_is_called_once_and_dropped_once() {
        // One word (an Arc, inline), two words (boxed), zero (function item).
        let (count, inline) = counted();
        Callback::new(inline).call();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(Arc::strong_count(&count), 1, "the closure was dropped");

        let (count, closure) = counted();
        let extra = Arc::clone(&count);
        let boxed = Callback::new(move || {
            closure();
            drop(extra);
        });
        assert_eq!(Arc::strong_count(&count), 3);
        boxed.call();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(Arc::strong_count(&count), 1);

        let (count, inline) = counted();
        drop(Callback::new(inline));
        assert_eq!(count.load(Ordering::SeqCst), 0, "dropped, not called");
        assert_eq!(Arc::strong_count(&count), 1);

        static CALLS: AtomicUsize = AtomicUsize::new(0);
        fn item() {
            CALLS.fetch_add(1, Ordering::SeqCst);
        }
        let mut zero_sized = Callback::new(item);
        assert!(zero_sized.has_free_word());
        assert_eq!(zero_sized.free_word_links(), (0, 0));
        zero_sized.set_free_word_links(7, u32::MAX);
        assert_eq!(zero_sized.free_word_links(), (7, u32::MAX));
        zero_sized.call();
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_removed_place_keeps_only_free_words() {
        let (count, inline) = counted();
        let inline = Callback::new(inline);
        assert!(!inline.has_free_word());
        let place = inline.removed_in_place();
        assert!(place.is_removed() && !inline.is_removed());
        assert_eq!(
            place.free_word_links(),
            (u32::MAX, u32::MAX),
            "the closure's bytes are not kept"
        );
        drop(place);
        inline.call();
        assert_eq!(count.load(Ordering::SeqCst), 1);

        fn item() {}
        let mut zero_sized = Callback::new(item);
        zero_sized.set_free_word_links(3, 4);
        let place = zero_sized.removed_in_place();
        assert!(place.is_removed());
        assert_eq!(place.free_word_links(), (3, 4));
    }

    #[test]
    fn a_panicking_closure_is_consumed_once() {
        let (count, closure) = counted();
        let callback = Callback::new(move || {
            closure();
            panic!("inside");
        });
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback.call()));
        assert!(caught.is_err());
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(Arc::strong_count(&count), 1, "dropped during the unwind");
    }
}
