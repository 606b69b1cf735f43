//! The ordered store of pending handlers: plain data, no globals, no locks,
//! no `unsafe`.
//!
//! Handlers live in a slab of 32-byte slots threaded on two intrusive
//! lists: the run order (newest first) and, for zero-sized function types,
//! one circular list per function, so that `unregister(f)` touches only
//! `f`'s own registrations. Each function's list runs through a header slot
//! of its own, so unlinking a slot never needs to know its function. A
//! [`Ticket`] (slot index + stamp) removes one handler in O(1); a stale
//! ticket is recognised by its stamp and refused.
//!
//! Slots are small because registering many handlers costs mostly the
//! kernel's clearing of fresh pages: registration sites are kept once each
//! in a side table and slots hold their index, and a function item's list
//! links live in the data word its callback does not use (see
//! `sys::Callback`). The few keyed callbacks that do use their word
//! (`register_with` with arguments) keep their links in a side map.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;

pub(crate) use crate::sys::Callback;

/// Where a handler was registered: the site `#[track_caller]` recorded.
pub(crate) type Site = &'static Location<'static>;

/// "No slot": the end of a list.
const NIL: u32 = u32::MAX;

/// Set in `Slot::site` when the slot's list links are in `Store::side`.
const SIDE: u32 = 1 << 31;

/// Stores keep their storage while they are this small, so that a
/// register/unregister pair on an empty store does not allocate each time.
const KEEP_SLOTS: usize = 64;

/// Identifies one registration: the slot it lives in and the stamp it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) index: u32,
    pub(crate) stamp: u32,
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

/// One slab entry, 32 bytes on 64-bit targets. A slot is a pending handler,
/// free (no callback; `older` links the free list), or the header of a
/// function's list (a header callback, not on the free list).
struct Slot {
    callback: Option<Callback>,
    /// Index into `Store::sites`, with `SIDE` when the links are in `side`.
    site: u32,
    stamp: u32,
    /// Neighbours in run order (`newer` runs before this one).
    newer: u32,
    older: u32,
}

/// A hasher for keys that are hashes or addresses already: `TypeId`s, slot
/// indices, and `Location` addresses (spread by a multiplication, since
/// their low bits are alike).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
    fn write_u32(&mut self, value: u32) {
        self.0 ^= u64::from(value);
    }
    fn write_usize(&mut self, value: usize) {
        self.0 ^= (value as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// One function-list link to replace (see `Store::relink`).
#[derive(Clone, Copy)]
enum Link {
    Newer(u32),
    Older(u32),
}

#[cold]
fn too_many() -> ! {
    panic!("atexit: more than 4 294 967 294 handlers and functions")
}

/// The handler store. See the module docs for its shape.
#[derive(Default)]
pub(crate) struct Store {
    slots: Vec<Slot>,
    newest: u32,
    free: u32,
    live: usize,
    /// Survives `shrink_if_empty`, so old tickets never match new slots.
    next_stamp: u32,
    /// Function type -> the header slot of its list.
    keys: FastMap<TypeId, u32>,
    /// The last function type registered, to skip the map for runs of the
    /// same function.
    last_key: Option<(TypeId, u32)>,
    /// Function-list links (newer, older) of the slots flagged `SIDE`.
    side: FastMap<u32, (u32, u32)>,
    /// Registration sites, each once; slots hold their index.
    sites: Vec<Site>,
    site_ids: FastMap<usize, u32>,
    /// The last site registered from (address, index).
    last_site: Option<(usize, u32)>,
    meta: FastMap<u32, Box<Meta>>,
}

impl Store {
    /// An empty store; allocates nothing.
    pub(crate) const fn new() -> Self {
        Store {
            slots: Vec::new(),
            newest: NIL,
            free: NIL,
            live: 0,
            next_stamp: 0,
            keys: HashMap::with_hasher(BuildHasherDefault::new()),
            last_key: None,
            side: HashMap::with_hasher(BuildHasherDefault::new()),
            sites: Vec::new(),
            site_ids: HashMap::with_hasher(BuildHasherDefault::new()),
            last_site: None,
            meta: HashMap::with_hasher(BuildHasherDefault::new()),
        }
    }

    /// How many handlers are pending.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Adds a handler as the newest. `key` is the function type for
    /// zero-sized callables, so that `remove_function` can find it.
    pub(crate) fn insert(
        &mut self,
        callback: Callback,
        site: Site,
        key: Option<TypeId>,
        meta: Option<Box<Meta>>,
    ) -> Ticket {
        let header = key.map(|type_id| self.header_of(type_id));
        let site = self.site_id(site);
        let stamp = self.stamp();
        let mut callback = callback;
        let fast = header.is_some() && callback.has_free_word();
        if fast {
            self.insert_links_fast(header.unwrap_or(NIL), &mut callback);
        } else {
            callback.set_links(NIL, NIL);
        }
        let index = self.allocate(Slot {
            callback: Some(callback),
            site,
            stamp,
            newer: NIL,
            older: self.newest,
        });
        if self.newest != NIL {
            self.slots[self.newest as usize].newer = index;
        }
        self.newest = index;
        if let (Some(header), false) = (header, fast) {
            // Newest first after the header: header -> newest ... oldest -> header.
            let (header_newer, first) = self.key_links(header).expect("a header has links");
            self.set_key_links(index, header, first);
            let (first_newer, first_older) = self.key_links(first).expect("on the list");
            debug_assert_eq!(first_newer, header);
            self.set_key_links(first, index, first_older);
            let header_newer = if first == header { index } else { header_newer };
            self.set_key_links(header, header_newer, index);
        }
        if let Some(meta) = meta {
            self.meta.insert(index, meta);
        }
        self.live += 1;
        Ticket { index, stamp }
    }

    /// Whether `ticket` names a handler that is still pending.
    pub(crate) fn contains(&self, ticket: Ticket) -> bool {
        self.slots.get(ticket.index as usize).is_some_and(|slot| {
            slot.stamp == ticket.stamp
                && slot
                    .callback
                    .as_ref()
                    .is_some_and(|callback| !callback.is_header())
        })
    }

    /// Removes the handler `ticket` names, if it is still pending.
    pub(crate) fn remove(&mut self, ticket: Ticket) -> Option<Callback> {
        if !self.contains(ticket) {
            return None;
        }
        let popped = self.take(ticket.index);
        self.shrink_if_empty();
        Some(popped.callback)
    }

    /// Removes every pending handler whose function type is `key`, appending
    /// their callbacks to `out`; returns how many. Costs time in proportion
    /// to that function's registrations only.
    pub(crate) fn remove_function(&mut self, key: TypeId, out: &mut Vec<Callback>) -> usize {
        let Some(&header) = self.keys.get(&key) else {
            return 0;
        };
        let mut removed = 0;
        let mut index = self.key_links(header).expect("a header has links").1;
        while index != header {
            let older = self.key_links(index).expect("on the list").1;
            out.push(self.take(index).callback);
            removed += 1;
            index = older;
        }
        self.shrink_if_empty();
        removed
    }

    /// Takes the newest pending handler out, to be run. The storage is
    /// kept (freeing it here would cost the last handler of a large run the
    /// unmapping of the slab): call `shrink_if_empty` after the run.
    pub(crate) fn pop_newest(&mut self) -> Option<Popped> {
        if self.newest == NIL {
            return None;
        }
        Some(self.take(self.newest))
    }

    /// Removes everything, newest first, appending the callbacks to `out`.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<Callback>) {
        out.reserve(self.live);
        while let Some(popped) = self.pop_newest() {
            out.push(popped.callback);
        }
        self.shrink_if_empty();
    }

    /// The registration sites of all pending handlers, newest first.
    #[cfg(test)]
    fn sites(&self) -> Vec<Site> {
        let mut sites = Vec::new();
        let mut index = self.newest;
        while index != NIL {
            let slot = &self.slots[index as usize];
            sites.push(self.sites[(slot.site & !SIDE) as usize]);
            index = slot.older;
        }
        sites
    }

    fn stamp(&mut self) -> u32 {
        let stamp = self.next_stamp;
        self.next_stamp = self.next_stamp.wrapping_add(1);
        stamp
    }

    /// Links a function item about to be stored at the next free index
    /// onto `header`'s list, newest first: its own links go in its word,
    /// and its neighbours (the header, the previous newest) learn of it.
    /// The common case of `insert`, kept to direct word accesses.
    #[inline]
    fn insert_links_fast(&mut self, header: u32, callback: &mut Callback) {
        let index = if self.free == NIL {
            self.slots.len() as u32
        } else {
            self.free
        };
        let Some(header_callback) = self.slots[header as usize].callback.as_mut() else {
            unreachable!("a header slot holds its header callback")
        };
        let (oldest, first) = header_callback.free_word_links();
        callback.set_free_word_links(header, first);
        if first == header {
            header_callback.set_free_word_links(index, index);
            return;
        }
        header_callback.set_free_word_links(oldest, index);
        let first_slot = &mut self.slots[first as usize];
        if first_slot.site & SIDE == 0 {
            if let Some(first_callback) = first_slot.callback.as_mut().filter(|c| c.has_free_word())
            {
                let (_, first_older) = first_callback.free_word_links();
                first_callback.set_free_word_links(index, first_older);
                return;
            }
        }
        // The previous newest keeps its links in the side map.
        let first_older = self.key_links(first).expect("on the list").1;
        self.set_key_links(first, index, first_older);
    }

    /// Puts `slot` in a free slot (or a new one) and returns its index.
    fn allocate(&mut self, slot: Slot) -> u32 {
        if self.free == NIL {
            let index = self.slots.len() as u32;
            if index == NIL {
                too_many();
            }
            self.slots.push(slot);
            index
        } else {
            let index = self.free;
            let reused = &mut self.slots[index as usize];
            self.free = reused.older;
            *reused = slot;
            index
        }
    }

    /// The header slot of `type_id`'s list, created on first use.
    fn header_of(&mut self, type_id: TypeId) -> u32 {
        if let Some((last, header)) = self.last_key {
            if last == type_id {
                return header;
            }
        }
        let header = match self.keys.get(&type_id) {
            Some(&header) => header,
            None => {
                let stamp = self.stamp();
                let header = self.allocate(Slot {
                    callback: Some(Callback::header()),
                    site: 0,
                    stamp,
                    newer: NIL,
                    older: NIL,
                });
                // An empty circular list: the header is its own neighbour.
                self.set_key_links(header, header, header);
                self.keys.insert(type_id, header);
                header
            }
        };
        self.last_key = Some((type_id, header));
        header
    }

    /// The index of `site` in `sites`, added on first use.
    fn site_id(&mut self, site: Site) -> u32 {
        let address = site as *const Location<'static> as usize;
        if let Some((last, id)) = self.last_site {
            if last == address {
                return id;
            }
        }
        let next = u32::try_from(self.sites.len())
            .ok()
            .filter(|&next| next < SIDE)
            .expect("atexit: more than 2 147 483 647 registration sites");
        let id = *self.site_ids.entry(address).or_insert(next);
        if id == next {
            self.sites.push(site);
        }
        self.last_site = Some((address, id));
        id
    }

    /// The function-list links (newer, older) of slot `index`, if it is on
    /// a list (a header always is).
    #[inline]
    fn key_links(&self, index: u32) -> Option<(u32, u32)> {
        let slot = &self.slots[index as usize];
        if slot.site & SIDE != 0 {
            return self.side.get(&index).copied();
        }
        match &slot.callback {
            Some(callback) if callback.has_free_word() => {
                let links = callback.free_word_links();
                (links.0 != NIL).then_some(links)
            }
            _ => None,
        }
    }

    /// Sets the function-list links of the occupied slot `index`: in its
    /// callback's free word if it has one, else in `side`.
    fn set_key_links(&mut self, index: u32, newer: u32, older: u32) {
        let slot = &mut self.slots[index as usize];
        let callback = slot.callback.as_mut().expect("links of a free slot");
        if callback.has_free_word() {
            callback.set_links(newer, older);
        } else {
            slot.site |= SIDE;
            self.side.insert(index, (newer, older));
        }
    }

    /// Replaces one function-list link of slot `index` (a header or a
    /// pending handler on a list), straight in its word when it can.
    #[inline]
    fn relink(&mut self, index: u32, link: Link) {
        let slot = &mut self.slots[index as usize];
        if slot.site & SIDE == 0 {
            if let Some(callback) = slot.callback.as_mut().filter(|c| c.has_free_word()) {
                let (newer, older) = callback.free_word_links();
                match link {
                    Link::Newer(newer) => callback.set_free_word_links(newer, older),
                    Link::Older(older) => callback.set_free_word_links(newer, older),
                }
                return;
            }
        }
        let (newer, older) = self.key_links(index).expect("on the list");
        match link {
            Link::Newer(newer) => self.set_key_links(index, newer, older),
            Link::Older(older) => self.set_key_links(index, newer, older),
        }
    }

    /// Unlinks the occupied slot `index` from both lists and frees it.
    fn take(&mut self, index: u32) -> Popped {
        if let Some((key_newer, key_older)) = self.key_links(index) {
            // Circular through the header: both neighbours are on the list.
            self.relink(key_newer, Link::Older(key_older));
            self.relink(key_older, Link::Newer(key_newer));
        }
        let free = self.free;
        let slot = &mut self.slots[index as usize];
        let callback = slot.callback.take().expect("taking a free slot");
        let (newer, older) = (slot.newer, slot.older);
        let site = slot.site;
        slot.older = free;
        self.free = index;
        if site & SIDE != 0 {
            self.side.remove(&index);
        }

        match newer {
            NIL => self.newest = older,
            newer => self.slots[newer as usize].older = older,
        }
        if older != NIL {
            self.slots[older as usize].newer = newer;
        }
        let meta = if self.meta.is_empty() {
            None
        } else {
            self.meta.remove(&index)
        };
        self.live -= 1;
        Popped {
            callback,
            site: self.sites[(site & !SIDE) as usize],
            meta,
        }
    }

    /// Gives the storage back once nothing is pending, so that memory stays
    /// proportional to what is live rather than to what once was.
    pub(crate) fn shrink_if_empty(&mut self) {
        if self.live == 0 && self.slots.len() > KEEP_SLOTS {
            self.slots = Vec::new();
            self.free = NIL;
            self.newest = NIL;
            self.keys = FastMap::default();
            self.last_key = None;
            self.side = FastMap::default();
            self.sites = Vec::new();
            self.site_ids = FastMap::default();
            self.last_site = None;
            self.meta = FastMap::default();
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
        store.insert(make(3), here(), None, None);
        assert!(store.contains(middle));
        assert!(store.remove(middle).is_some());
        assert!(!store.contains(middle));
        assert!(store.remove(middle).is_none());
        // The freed slot is reused; the old ticket must not reach the newcomer.
        let reused = store.insert(make(4), here(), None, None);
        assert_eq!(reused.index, middle.index);
        assert!(store.remove(middle).is_none());
        assert!(store.contains(first));
        run_all(&mut store);
        assert_eq!(*log.lock().unwrap(), vec![4, 3, 1]);
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
}
