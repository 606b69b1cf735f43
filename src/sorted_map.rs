//! [`SortedMap`]: a map kept as a vector sorted by key, for the store's
//! small side tables. Keys mostly arrive in increasing order (stamps only
//! grow) and leave from the end (the run pops the newest), so inserting and
//! removing there is a push and a pop; a lookup is a binary search. It
//! keeps `HashMap`'s code out of every program.

/// A map from `K` to `V`, sorted by `K`.
#[derive(Debug)]
pub(crate) struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K: Ord + Copy, V> SortedMap<K, V> {
    pub(crate) const fn new() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }

    fn position(&self, key: K) -> Result<usize, usize> {
        // Most keys are the newest: try the end first.
        match self.entries.last() {
            Some((last, _)) if *last < key => Err(self.entries.len()),
            _ => self.entries.binary_search_by(|(known, _)| known.cmp(&key)),
        }
    }

    pub(crate) fn get(&self, key: K) -> Option<&V> {
        self.position(key).ok().map(|index| &self.entries[index].1)
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(key) {
            Ok(index) => Some(std::mem::replace(&mut self.entries[index].1, value)),
            Err(index) => {
                self.entries.insert(index, (key, value));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, key: K) -> Option<V> {
        let index = self.position(key).ok()?;
        Some(self.entries.remove(index).1)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map_in_any_order() {
        let mut map = SortedMap::new();
        for key in [5u64, 1, 9, 3, 7, 10] {
            assert_eq!(map.insert(key, key * 10), None);
        }
        assert_eq!(map.insert(3, 33), Some(30));
        assert_eq!(map.len(), 6);
        assert_eq!(map.get(3), Some(&33));
        assert_eq!(map.get(4), None);
        assert_eq!(map.remove(10), Some(100), "the newest");
        assert_eq!(map.remove(1), Some(10), "the oldest");
        assert_eq!(map.remove(1), None);
        assert_eq!(map.get(9), Some(&90));
        let keys: Vec<u64> = map.entries.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, [3, 5, 7, 9]);
        map.clear();
        assert!(map.is_empty());
    }
}
