//! Locks shared between threads and tasks.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`, taking the data over if a holder panicked. Use it only for data that every
/// critical section leaves consistent (plain reads, single assignments, whole insertions):
/// then a panic elsewhere must not stop the rest of the node from using it.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_still_usable() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("holder panics");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
    }
}
