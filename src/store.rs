//! The ordered store of pending handlers: plain data, no globals, no locks,
//! no `unsafe`.
//!
//! Handlers live in a vector in registration order, newest last, so that
//! registering is a push and the run takes them with pops: the two hot
//! paths touch one 32-byte slot and no list. A handler removed before it
//! runs leaves its slot in place, marked removed (a *place*), so that no
//! other slot moves; places on top are popped at once, and when they
//! outnumber the pending handlers the vector is compacted. A [`Ticket`]
//! (slot index + stamp) finds its slot in O(1) until a compaction moves it,
//! then by a binary search on the stamp (stamps only grow along the
//! vector); a stale ticket is recognised by its stamp and refused.
//!
//! `unregister(f)` touches only `f`'s own registrations: each function type
//! (zero-sized callables) has a chain from its newest slot to its oldest.
//! A function item's link lives in the data word its callback does not use
//! (see `sys::Callback`): the older slot of the chain and the function's
//! number. Because the run pops from the top, the slot it pops is always
//! the newest of its chain, so the chain's start simply moves to the link.
//! The few keyed callbacks that use their word (`register_with` with
//! arguments) keep their links in a side map.

use std::any::TypeId;
use std::borrow::Cow;
use std::mem;
use std::panic::Location;

use crate::sorted_map::SortedMap;
pub(crate) use crate::sys::Callback;

/// Where a handler was registered: the site `#[track_caller]` recorded.
pub(crate) type Site = &'static Location<'static>;

/// "No slot" (the end of a chain), or "no function".
const NIL: u32 = u32::MAX;

/// Flags kept in the top bits of `Slot::stamp`, so that the run's fast
/// path decides everything from one word.
///
/// The slot is on its function's chain, with the link in its callback's
/// free word.
const CHAINED: u64 = 1 << 63;
/// The slot is on its function's chain, with the link in `Store::side`.
const SIDE: u64 = 1 << 62;
/// The slot has a `Meta` in `Store::meta`.
const META: u64 = 1 << 61;
/// The slot is the place of a removed handler.
const REMOVED: u64 = 1 << 60;
const FLAGS: u64 = CHAINED | SIDE | META | REMOVED;

/// Stores keep their storage while they are this small, so that a
/// register/unregister pair on an empty store does not allocate each time;
/// and removed places are not compacted away while there are fewer.
const KEEP_SLOTS: usize = 64;

/// Identifies one registration: the slot it was put in and the stamp it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) index: u32,
    pub(crate) stamp: u64,
}

/// What is known of a handler besides its code and site; only hooks built
/// with [`crate::Hook`] options carry it, so plain registrations pay nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The name given with `Hook::name`.
    pub(crate) name: Option<Cow<'static, str>>,
    /// With `InChild::Skip`: the process that registered it, the only one
    /// that may run it.
    pub(crate) owner_pid: Option<u32>,
}

/// A handler taken out of the store to be run.
pub(crate) struct Popped {
    pub(crate) callback: Callback,
    pub(crate) site: Site,
    pub(crate) meta: Option<Box<Meta>>,
}

/// One entry, 32 bytes on 64-bit targets: a pending handler or the place of
/// a removed one (`REMOVED`).
struct Slot {
    callback: Callback,
    site: Site,
    /// The registration's stamp (below bit 60; 2^60 registrations never
    /// wrap), with the flags above it.
    stamp: u64,
}

impl Slot {
    fn stamp(&self) -> u64 {
        self.stamp & !FLAGS
    }

    fn is_removed(&self) -> bool {
        self.stamp & REMOVED != 0
    }
}

/// One function type that has been registered, and where its chain starts.
struct Function {
    /// Its newest slot still in the store (pending or a removed place on
    /// the chain), or `NIL`.
    newest: u32,
}

/// Takes `slot` off its chain: its link (older slot, function), from its
/// word or out of `side`; `(NIL, NIL)` for a slot on no chain.
fn take_link(side: &mut SortedMap<u64, (u32, u32)>, slot: &mut Slot) -> (u32, u32) {
    let flags = slot.stamp;
    slot.stamp &= !(CHAINED | SIDE);
    if flags & CHAINED != 0 {
        slot.callback.free_word_links()
    } else if flags & SIDE != 0 {
        side.remove(slot.stamp()).unwrap_or((NIL, NIL))
    } else {
        (NIL, NIL)
    }
}

#[cold]
fn too_many() -> ! {
    panic!("atexit: more than 4 294 967 294 handlers pending")
}

/// The handler store. See the module docs for its shape.
pub(crate) struct Store {
    slots: Vec<Slot>,
    /// Removed places in `slots` (the rest are pending): the hot paths,
    /// pushing and popping pending slots, leave it alone.
    places: usize,
    /// Survives `shrink_if_empty`, so old tickets never match new slots.
    next_stamp: u64,
    functions: Vec<Function>,
    /// Function type -> its index in `functions`.
    function_ids: SortedMap<TypeId, u32>,
    /// The last function registered, to skip the map for runs of the same
    /// function.
    last_function: Option<(TypeId, u32)>,
    /// Chain links (older slot, function) of the slots flagged `SIDE`, by
    /// stamp.
    side: SortedMap<u64, (u32, u32)>,
    meta: SortedMap<u64, Box<Meta>>,
}

impl Store {
    /// An empty store; allocates nothing.
    pub(crate) const fn new() -> Self {
        Store {
            slots: Vec::new(),
            places: 0,
            next_stamp: 0,
            functions: Vec::new(),
            function_ids: SortedMap::new(),
            last_function: None,
            side: SortedMap::new(),
            meta: SortedMap::new(),
        }
    }

    /// How many handlers are pending.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.places
    }

    /// Adds a handler as the newest. `key` is the function type for
    /// zero-sized callables, so that `remove_function` can find it.
    #[inline(always)]
    pub(crate) fn insert(
        &mut self,
        callback: Callback,
        site: Site,
        key: Option<TypeId>,
        meta: Option<Box<Meta>>,
    ) -> Ticket {
        self.insert_as(callback, site, key, meta, None)
    }

    /// `insert` of a zero-sized callable (a function item) without meta:
    /// the most common registration, with what it need not check left out.
    #[inline(always)]
    pub(crate) fn insert_function(
        &mut self,
        callback: Callback,
        site: Site,
        key: TypeId,
    ) -> Ticket {
        let free_word = Callback::ZERO_SIZED_WORD_IS_FREE;
        debug_assert_eq!(callback.has_free_word(), free_word);
        self.insert_as(callback, site, Some(key), None, Some(free_word))
    }

    /// The common cases (no key, or a function item registered right after
    /// another registration of the same function) stay inline; the rest is
    /// out of line. `free_word` is `callback.has_free_word()` when the
    /// caller knows it.
    #[inline(always)]
    fn insert_as(
        &mut self,
        mut callback: Callback,
        site: Site,
        key: Option<TypeId>,
        meta: Option<Box<Meta>>,
        free_word: Option<bool>,
    ) -> Ticket {
        if self.slots.len() == self.slots.capacity() {
            self.grow();
        }
        let index = self.slots.len() as u32;
        let stamp = self.next_stamp;
        let mut flagged = stamp;
        if let Some(type_id) = key {
            let free_word = free_word.unwrap_or_else(|| callback.has_free_word());
            let (flag, link) = match self.last_function {
                Some((last, function)) if last == type_id && free_word => {
                    let older = mem::replace(&mut self.functions[function as usize].newest, index);
                    (CHAINED, (older, function))
                }
                _ => self.chain_uncommon(free_word, type_id, index, stamp),
            };
            if flag == CHAINED {
                callback.set_free_word_links(link.0, link.1);
            }
            flagged |= flag;
        }
        if let Some(meta) = meta {
            flagged |= self.add_meta(stamp, meta);
        }
        self.slots.push(Slot {
            callback,
            site,
            stamp: flagged,
        });
        self.next_stamp = stamp + 1;
        Ticket { index, stamp }
    }

    /// Makes room for more slots, doubling, but never beyond `NIL` of
    /// them: indices stay below `NIL`, and the slot that would need `NIL`
    /// is refused here, the only place the hot path checks.
    #[cold]
    fn grow(&mut self) {
        let len = self.slots.len();
        if len >= NIL as usize {
            too_many();
        }
        let more = len.max(4).min(NIL as usize - len);
        self.slots.reserve_exact(more);
    }

    /// Puts the slot about to be stored at `index` at the start of
    /// `type_id`'s chain; returns the flag to add to its stamp and, for
    /// `CHAINED`, the link to put in its free word.
    #[cold]
    fn chain_uncommon(
        &mut self,
        free_word: bool,
        type_id: TypeId,
        index: u32,
        stamp: u64,
    ) -> (u64, (u32, u32)) {
        let function = self.function_of(type_id);
        let older = mem::replace(&mut self.functions[function as usize].newest, index);
        if free_word {
            (CHAINED, (older, function))
        } else {
            self.side.insert(stamp, (older, function));
            (SIDE, (NIL, NIL))
        }
    }

    #[cold]
    fn add_meta(&mut self, stamp: u64, meta: Box<Meta>) -> u64 {
        self.meta.insert(stamp, meta);
        META
    }

    /// Whether `ticket` names a handler that is still pending.
    pub(crate) fn contains(&self, ticket: Ticket) -> bool {
        self.find(ticket)
            .is_some_and(|index| !self.slots[index].is_removed())
    }

    /// Removes the handler `ticket` names, if it is still pending.
    pub(crate) fn remove(&mut self, ticket: Ticket) -> Option<Callback> {
        let index = self.find(ticket)?;
        if self.slots[index].is_removed() {
            return None;
        }
        let callback = self.remove_in_place(index);
        self.tidy();
        Some(callback)
    }

    /// Removes every pending handler whose function type is `key`, appending
    /// their callbacks to `out`; returns how many. Costs time in proportion
    /// to that function's registrations only.
    pub(crate) fn remove_function(&mut self, key: TypeId, out: &mut Vec<Callback>) -> usize {
        let Some(&function) = self.function_ids.get(key) else {
            return 0;
        };
        let mut removed = 0;
        let mut index = mem::replace(&mut self.functions[function as usize].newest, NIL);
        while index != NIL {
            // Off the chain (which is now empty): popping this slot later
            // must not move the chain's start.
            let older = self.unchain(index as usize).0;
            if !self.slots[index as usize].is_removed() {
                out.push(self.remove_in_place(index as usize));
                removed += 1;
            }
            index = older;
        }
        self.tidy();
        removed
    }

    /// Takes the newest pending handler out, to be run. The storage is
    /// kept (freeing it here would cost the last handler of a large run the
    /// unmapping of the slab): call `shrink_if_empty` after the run.
    pub(crate) fn pop_newest(&mut self) -> Option<Popped> {
        match self.pop_plain() {
            Some((callback, site)) => Some(Popped {
                callback,
                site,
                meta: None,
            }),
            None => self.pop_uncommon(),
        }
    }

    /// The newest slot's callback and site if it is a pending handler with
    /// no meta and no side link; `None` leaves the store as it was. The
    /// exit run's fast path: one slot, no map.
    #[inline(always)]
    pub(crate) fn pop_plain(&mut self) -> Option<(Callback, Site)> {
        let newest = self.slots.last()?;
        if newest.stamp & (FLAGS & !CHAINED) != 0 {
            return None;
        }
        let slot = self.slots.pop()?;
        if slot.stamp & CHAINED != 0 {
            // The newest slot of the store is the newest of its chain.
            let (older, function) = slot.callback.free_word_links();
            if let Some(function) = self.functions.get_mut(function as usize) {
                function.newest = older;
            }
        }
        Some((slot.callback, slot.site))
    }

    /// `pop_newest` when the newest slot has a side link or a meta, or is
    /// a removed place (then the pending one under it is taken).
    #[cold]
    pub(crate) fn pop_uncommon(&mut self) -> Option<Popped> {
        loop {
            let mut slot = self.slots.pop()?;
            self.leave_chain(&mut slot);
            if slot.is_removed() {
                self.places -= 1;
                continue;
            }
            let meta = if slot.stamp & META == 0 {
                None
            } else {
                self.meta.remove(slot.stamp())
            };
            return Some(Popped {
                callback: slot.callback,
                site: slot.site,
                meta,
            });
        }
    }

    /// Removes everything, newest first, appending the callbacks to `out`.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<Callback>) {
        out.reserve(self.len());
        while let Some(popped) = self.pop_newest() {
            out.push(popped.callback);
        }
        self.shrink_if_empty();
    }

    /// The registration sites of all pending handlers, newest first.
    #[cfg(test)]
    fn sites(&self) -> Vec<Site> {
        self.slots
            .iter()
            .rev()
            .filter(|slot| !slot.is_removed())
            .map(|slot| slot.site)
            .collect()
    }

    /// The index of `type_id` in `functions`, added on first use.
    fn function_of(&mut self, type_id: TypeId) -> u32 {
        if let Some((last, function)) = self.last_function {
            if last == type_id {
                return function;
            }
        }
        let function = match self.function_ids.get(type_id) {
            Some(&function) => function,
            None => {
                let next = self.functions.len() as u32;
                if next == NIL {
                    too_many();
                }
                self.functions.push(Function { newest: NIL });
                self.function_ids.insert(type_id, next);
                next
            }
        };
        self.last_function = Some((type_id, function));
        function
    }

    /// The slot `ticket` names (pending or a removed place), if it is
    /// still in the store.
    fn find(&self, ticket: Ticket) -> Option<usize> {
        let index = ticket.index as usize;
        if self
            .slots
            .get(index)
            .is_some_and(|slot| slot.stamp() == ticket.stamp)
        {
            return Some(index);
        }
        // Moved down by a compaction, or gone.
        let index = self
            .slots
            .partition_point(|slot| slot.stamp() < ticket.stamp);
        self.slots
            .get(index)
            .is_some_and(|slot| slot.stamp() == ticket.stamp)
            .then_some(index)
    }

    /// Takes the pending handler at `index` out, leaving a removed place
    /// that stays on its function's chain.
    fn remove_in_place(&mut self, index: usize) -> Callback {
        let slot = &mut self.slots[index];
        let place = slot.callback.removed_in_place();
        let callback = mem::replace(&mut slot.callback, place);
        let meta = slot.stamp & META != 0;
        slot.stamp = (slot.stamp & !META) | REMOVED;
        if meta {
            let stamp = slot.stamp();
            self.meta.remove(stamp);
        }
        self.places += 1;
        callback
    }

    /// The chain link (older slot, function) of slot `index`, which leaves
    /// its chain; `(NIL, NIL)` for a slot on no chain.
    fn unchain(&mut self, index: usize) -> (u32, u32) {
        take_link(&mut self.side, &mut self.slots[index])
    }

    /// A slot just popped off the top was the newest of its chain: the
    /// chain now starts at its link.
    fn leave_chain(&mut self, slot: &mut Slot) {
        let (older, function) = take_link(&mut self.side, slot);
        if let Some(function) = self.functions.get_mut(function as usize) {
            function.newest = older;
        }
    }

    /// After a removal: pops the removed places on top, compacts when
    /// places outnumber pending handlers, gives the storage back when
    /// nothing is pending.
    fn tidy(&mut self) {
        while self.slots.last().is_some_and(Slot::is_removed) {
            if let Some(mut slot) = self.slots.pop() {
                self.leave_chain(&mut slot);
                self.places -= 1;
            }
        }
        if self.places > self.len() && self.places > KEEP_SLOTS {
            self.compact();
        }
        self.shrink_if_empty();
    }

    /// Drops every removed place and threads the chains again through the
    /// new indices. Slots keep their order, so stamps still grow along the
    /// vector and moved tickets are found by `find`'s search.
    fn compact(&mut self) {
        let Store {
            slots,
            places,
            functions,
            side,
            ..
        } = self;
        *places = 0;
        slots.retain(|slot| {
            if slot.is_removed() && slot.stamp & SIDE != 0 {
                side.remove(slot.stamp());
            }
            !slot.is_removed()
        });
        for function in functions.iter_mut() {
            function.newest = NIL;
        }
        for (index, slot) in slots.iter_mut().enumerate() {
            let function = if slot.stamp & CHAINED != 0 {
                slot.callback.free_word_links().1
            } else if slot.stamp & SIDE != 0 {
                side.get(slot.stamp()).map_or(NIL, |link| link.1)
            } else {
                continue;
            };
            let Some(entry) = functions.get_mut(function as usize) else {
                continue;
            };
            let older = mem::replace(&mut entry.newest, index as u32);
            if slot.stamp & CHAINED != 0 {
                slot.callback.set_free_word_links(older, function);
            } else {
                side.insert(slot.stamp(), (older, function));
            }
        }
        if slots.capacity() > 4 * slots.len().max(KEEP_SLOTS) {
            slots.shrink_to(2 * slots.len());
        }
    }

    /// Gives the storage back once nothing is pending, so that memory stays
    /// proportional to what is live rather than to what once was.
    pub(crate) fn shrink_if_empty(&mut self) {
        if self.len() != 0 {
            return;
        }
        // Only removed places can be left: nothing to drop.
        self.slots.clear();
        self.places = 0;
        self.side.clear();
        self.meta.clear();
        for function in &mut self.functions {
            function.newest = NIL;
        }
        if self.slots.capacity() > KEEP_SLOTS || self.functions.len() > KEEP_SLOTS {
            self.slots = Vec::new();
            self.functions = Vec::new();
            self.function_ids = SortedMap::new();
            self.last_function = None;
            self.side = SortedMap::new();
            self.meta = SortedMap::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[track_caller]
    fn here() -> Site {
        Location::caller()
    }

    fn recorder() -> (Arc<Mutex<Vec<u32>>>, impl Fn(u32) -> Callback) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let make = {
            let log = Arc::clone(&log);
            move |n: u32| -> Callback {
                let log = Arc::clone(&log);
                Callback::new(move || log.lock().unwrap().push(n))
            }
        };
        (log, make)
    }

    fn run_all(store: &mut Store) {
        while let Some(popped) = store.pop_newest() {
            popped.callback.call();
        }
        store.shrink_if_empty();
    }

    struct KeyA;
    struct KeyB;

    #[test]
    fn slots_are_32_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
    }

    #[test]
    fn runs_newest_first() {
        let (log, make) = recorder();
        let mut store = Store::new();
        for n in 0..5 {
            store.insert(make(n), here(), None, None);
        }
        assert_eq!(store.len(), 5);
        run_all(&mut store);
        assert_eq!(*log.lock().unwrap(), vec![4, 3, 2, 1, 0]);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn ticket_removes_once_and_stale_tickets_are_refused() {
        let (log, make) = recorder();
        let mut store = Store::new();
        let first = store.insert(make(1), here(), None, None);
        let middle = store.insert(make(2), here(), None, None);
        let top = store.insert(make(3), here(), None, None);
        assert!(store.contains(middle));
        assert!(store.remove(middle).is_some());
        assert!(!store.contains(middle));
        assert!(store.remove(middle).is_none());
        // Removing the top pops the places under it too: the next
        // registration reuses the middle's index, and the old ticket must
        // not reach the newcomer.
        assert!(store.remove(top).is_some());
        assert_eq!(store.slots.len(), 1);
        let reused = store.insert(make(4), here(), None, None);
        assert_eq!(reused.index, middle.index);
        assert!(store.remove(middle).is_none());
        assert!(store.contains(first));
        run_all(&mut store);
        assert_eq!(*log.lock().unwrap(), vec![4, 1]);
    }

    #[test]
    fn compaction_keeps_order_tickets_and_function_chains() {
        let (log, make) = recorder();
        let mut store = Store::new();
        let a = Some(TypeId::of::<KeyA>());
        fn item() {}
        // Every third handler is kept; the rest are removed from the
        // middle, which leaves places until they outnumber the pending.
        let mut tickets = Vec::new();
        for n in 0..600 {
            let callback = if n % 2 == 0 {
                make(n)
            } else {
                Callback::new(item)
            };
            let key = if n % 2 == 0 { None } else { a };
            tickets.push(store.insert(callback, here(), key, None));
        }
        let top = store.insert(make(1000), here(), None, None);
        for n in (0..600).filter(|n| n % 3 != 0) {
            assert!(store.remove(tickets[n]).is_some(), "{n}");
        }
        assert_eq!(store.len(), 201);
        assert!(store.slots.len() < 600, "compacted");
        // Tickets of moved slots still find them; removed ones stay dead.
        for (n, ticket) in tickets.iter().enumerate() {
            assert_eq!(store.contains(*ticket), n % 3 == 0, "{n}");
        }
        assert!(store.contains(top));
        assert!(store.remove(tickets[300]).is_some());
        assert!(store.remove(tickets[300]).is_none());
        // A's chain was threaded again: it finds exactly A's pending ones
        // (odd multiples of 3, less 300's neighbour 303 removed below).
        assert!(store.remove(tickets[303]).is_some());
        let mut out = Vec::new();
        let expected = (0..600)
            .filter(|n| n % 3 == 0 && n % 2 == 1 && *n != 303)
            .count();
        assert_eq!(
            store.remove_function(TypeId::of::<KeyA>(), &mut out),
            expected
        );
        drop(out);
        run_all(&mut store);
        let mut ran: Vec<u32> = (0..600).filter(|n| n % 6 == 0 && *n != 300).collect();
        ran.push(1000);
        ran.reverse();
        assert_eq!(*log.lock().unwrap(), ran);
    }

    #[test]
    fn the_run_moves_a_chain_to_its_older_slots() {
        let (log, make) = recorder();
        let mut store = Store::new();
        let a = Some(TypeId::of::<KeyA>());
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        fn item() {
            CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        store.insert(Callback::new(item), here(), a, None);
        store.insert(make(1), here(), None, None);
        let removed = store.insert(Callback::new(item), here(), a, None);
        store.insert(Callback::new(item), here(), a, None);
        assert!(store.remove(removed).is_some());
        // The newest A runs; the removed place under the next handler stays
        // on A's chain, and the chain must now start below the popped one.
        store.pop_newest().unwrap().callback.call();
        store.insert(make(2), here(), None, None);
        let mut out = Vec::new();
        assert_eq!(store.remove_function(TypeId::of::<KeyA>(), &mut out), 1);
        drop(out);
        run_all(&mut store);
        assert_eq!(CALLS.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(*log.lock().unwrap(), vec![2, 1]);
    }

    #[test]
    fn keyed_callbacks_with_data_keep_links_aside() {
        let (log, make) = recorder();
        let mut store = Store::new();
        let a = Some(TypeId::of::<KeyA>());
        let first = store.insert(make(1), here(), a, None);
        store.insert(make(2), here(), None, None);
        store.insert(make(3), here(), a, None);
        assert_eq!(store.side.len(), 2);
        assert!(store.remove(first).is_some());
        store.pop_newest().unwrap().callback.call();
        let mut out = Vec::new();
        assert_eq!(store.remove_function(TypeId::of::<KeyA>(), &mut out), 0);
        drop(out);
        run_all(&mut store);
        assert!(store.side.is_empty());
        assert_eq!(*log.lock().unwrap(), vec![3, 2]);
    }

    #[test]
    fn remove_function_takes_only_that_function() {
        let (log, make) = recorder();
        let mut store = Store::new();
        let a = Some(TypeId::of::<KeyA>());
        let b = Some(TypeId::of::<KeyB>());
        store.insert(make(1), here(), a, None);
        store.insert(make(2), here(), b, None);
        let a3 = store.insert(make(3), here(), a, None);
        store.insert(make(4), here(), None, None);
        store.insert(make(5), here(), a, None);
        // Removing one of A's by ticket keeps A's list intact.
        assert!(store.remove(a3).is_some());
        let mut out = Vec::new();
        assert_eq!(store.remove_function(TypeId::of::<KeyA>(), &mut out), 2);
        assert_eq!(out.len(), 2);
        assert_eq!(store.remove_function(TypeId::of::<KeyA>(), &mut out), 0);
        assert_eq!(store.len(), 2);
        run_all(&mut store);
        assert_eq!(*log.lock().unwrap(), vec![4, 2]);
    }

    #[test]
    fn function_lists_survive_interleaved_removals() {
        let (log, make) = recorder();
        let mut store = Store::new();
        let a = Some(TypeId::of::<KeyA>());
        let b = Some(TypeId::of::<KeyB>());
        let mut tickets = Vec::new();
        for n in 0..12 {
            let key = if n % 3 == 0 { b } else { a };
            tickets.push(store.insert(make(n), here(), key, None));
        }
        // By ticket, from the middle and both ends of A's list.
        for n in [1, 5, 11] {
            assert!(store.remove(tickets[n]).is_some());
        }
        // The newest pending (10, an A) runs.
        let popped = store.pop_newest().unwrap();
        popped.callback.call();
        let mut out = Vec::new();
        assert_eq!(store.remove_function(TypeId::of::<KeyA>(), &mut out), 4);
        assert_eq!(store.remove_function(TypeId::of::<KeyA>(), &mut out), 0);
        // A's list is reusable after emptying.
        store.insert(make(20), here(), a, None);
        run_all(&mut store);
        assert_eq!(*log.lock().unwrap(), vec![10, 20, 9, 6, 3, 0]);
    }

    #[test]
    fn insert_after_pop_keeps_order() {
        let (log, make) = recorder();
        let mut store = Store::new();
        store.insert(make(1), here(), None, None);
        store.insert(make(2), here(), None, None);
        let popped = store.pop_newest().unwrap();
        popped.callback.call();
        // A handler registered during the run goes before the older ones.
        store.insert(make(3), here(), None, None);
        run_all(&mut store);
        assert_eq!(*log.lock().unwrap(), vec![2, 3, 1]);
    }

    #[test]
    fn storage_is_released_once_empty() {
        let (_log, make) = recorder();
        let mut store = Store::new();
        let tickets: Vec<_> = (0..1000)
            .map(|n| store.insert(make(n), here(), Some(TypeId::of::<KeyA>()), None))
            .collect();
        for ticket in &tickets {
            store.remove(*ticket);
        }
        assert_eq!(store.len(), 0);
        assert_eq!(store.slots.capacity(), 0);
        // Tickets from before the release stay dead.
        assert!(!store.contains(tickets[0]));
        let fresh = store.insert(make(0), here(), None, None);
        assert!(!store.contains(tickets[0]));
        assert!(store.contains(fresh));
    }

    #[test]
    fn meta_follows_its_slot() {
        let (_log, make) = recorder();
        let mut store = Store::new();
        let meta = Meta {
            name: Some("flush".into()),
            owner_pid: None,
        };
        store.insert(make(1), here(), None, Some(Box::new(meta.clone())));
        store.insert(make(2), here(), None, None);
        assert!(store.pop_newest().unwrap().meta.is_none());
        assert_eq!(store.pop_newest().unwrap().meta, Some(Box::new(meta)));
        assert!(store.meta.is_empty());
    }

    #[test]
    fn sites_are_kept_in_run_order() {
        let (_log, make) = recorder();
        let mut store = Store::new();
        let first = here();
        let second = here();
        store.insert(make(1), first, None, None);
        store.insert(make(2), second, None, None);
        assert_eq!(store.sites(), vec![second, first]);
    }

    #[test]
    fn drain_empties_newest_first() {
        let (log, make) = recorder();
        let mut store = Store::new();
        for n in 0..3 {
            store.insert(make(n), here(), None, None);
        }
        let mut out = Vec::new();
        store.drain_into(&mut out);
        assert_eq!(store.len(), 0);
        for callback in out {
            callback.call();
        }
        assert_eq!(*log.lock().unwrap(), vec![2, 1, 0]);
    }

    /// The store against a plain model, over sequences long enough for
    /// places to pile up and be compacted away: the same handlers pending,
    /// popped newest first, found by ticket and by function.
    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::sync::atomic::{AtomicUsize, Ordering};

        static CALLS: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];

        fn keyed<const K: usize>() {
            CALLS[K].fetch_add(1, Ordering::SeqCst);
        }

        struct K0;
        struct K1;
        struct K2;

        fn key(k: usize) -> TypeId {
            [TypeId::of::<K0>(), TypeId::of::<K1>(), TypeId::of::<K2>()][k]
        }

        #[derive(Clone, Debug)]
        enum Op {
            /// A function item of function `k` (its link in the word).
            InsertItem(usize),
            /// A closure with data registered under function `k` (its
            /// link aside), or under none.
            InsertKeyedData(Option<usize>),
            /// With a meta naming it.
            InsertNamed,
            Remove(usize),
            RemoveFunction(usize),
            Pop,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (0..3usize).prop_map(Op::InsertItem),
                2 => prop::option::of(0..3usize).prop_map(Op::InsertKeyedData),
                1 => Just(Op::InsertNamed),
                4 => any::<usize>().prop_map(Op::Remove),
                1 => (0..3usize).prop_map(Op::RemoveFunction),
                1 => Just(Op::Pop),
            ]
        }

        /// One registration as the model knows it.
        #[derive(Clone, Debug, PartialEq)]
        struct Entry {
            id: usize,
            function: Option<usize>,
            item: bool,
        }

        fn identify(popped: Popped, log: &Mutex<Vec<usize>>) -> (Option<usize>, Option<usize>) {
            let before: Vec<usize> = CALLS.iter().map(|c| c.load(Ordering::SeqCst)).collect();
            let logged = log.lock().unwrap().len();
            let name = popped
                .meta
                .and_then(|meta| meta.name)
                .map(|name| name.parse().unwrap());
            popped.callback.call();
            let item = (0..3).find(|&k| CALLS[k].load(Ordering::SeqCst) != before[k]);
            let id = log.lock().unwrap().get(logged).copied().or(name);
            (item, id)
        }

        /// Pops the newest handler of both and checks it is the same one.
        fn pop_and_check(
            store: &mut Store,
            model: &mut Vec<Entry>,
            log: &Mutex<Vec<usize>>,
        ) -> Result<(), TestCaseError> {
            let popped = store.pop_newest();
            prop_assert_eq!(popped.is_some(), !model.is_empty());
            if let (Some(popped), Some(newest)) = (popped, model.pop()) {
                let (item, id) = identify(popped, log);
                if newest.item {
                    prop_assert_eq!(item, newest.function);
                } else {
                    prop_assert_eq!(id, Some(newest.id));
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn store_matches_model(ops in prop::collection::vec(op(), 0..600)) {
                let log = Arc::new(Mutex::new(Vec::new()));
                let mut store = Store::new();
                let mut model: Vec<Entry> = Vec::new();
                let mut tickets: Vec<(Ticket, Entry)> = Vec::new();
                for (id, op) in ops.into_iter().enumerate() {
                    match op {
                        Op::InsertItem(k) => {
                            let callback = match k {
                                0 => Callback::new(keyed::<0>),
                                1 => Callback::new(keyed::<1>),
                                _ => Callback::new(keyed::<2>),
                            };
                            let entry = Entry { id, function: Some(k), item: true };
                            tickets.push((store.insert(callback, here(), Some(key(k)), None), entry.clone()));
                            model.push(entry);
                        }
                        Op::InsertKeyedData(k) => {
                            let log = Arc::clone(&log);
                            let callback = Callback::new(move || log.lock().unwrap().push(id));
                            let entry = Entry { id, function: k, item: false };
                            tickets.push((store.insert(callback, here(), k.map(key), None), entry.clone()));
                            model.push(entry);
                        }
                        Op::InsertNamed => {
                            let meta = Meta { name: Some(id.to_string().into()), owner_pid: None };
                            let entry = Entry { id, function: None, item: false };
                            let ticket = store.insert(Callback::new(|| {}), here(), None, Some(Box::new(meta)));
                            tickets.push((ticket, entry.clone()));
                            model.push(entry);
                        }
                        Op::Remove(pick) => {
                            if tickets.is_empty() {
                                continue;
                            }
                            let (ticket, entry) = tickets[pick % tickets.len()].clone();
                            let pending = model.iter().position(|known| *known == entry);
                            prop_assert_eq!(store.contains(ticket), pending.is_some());
                            prop_assert_eq!(store.remove(ticket).is_some(), pending.is_some());
                            if let Some(at) = pending {
                                model.remove(at);
                            }
                            prop_assert!(!store.contains(ticket));
                        }
                        Op::RemoveFunction(k) => {
                            let mut out = Vec::new();
                            let expected = model.iter().filter(|e| e.function == Some(k)).count();
                            prop_assert_eq!(store.remove_function(key(k), &mut out), expected);
                            prop_assert_eq!(out.len(), expected);
                            model.retain(|e| e.function != Some(k));
                        }
                        Op::Pop => pop_and_check(&mut store, &mut model, &log)?,
                    }
                    prop_assert_eq!(store.len(), model.len());
                    prop_assert!(store.places <= store.len().max(KEEP_SLOTS));
                }
                // The rest runs newest first, and nothing else.
                while !model.is_empty() {
                    pop_and_check(&mut store, &mut model, &log)?;
                }
                prop_assert!(store.pop_newest().is_none());
            }
        }
    }
}
