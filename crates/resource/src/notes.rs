//! The protected data: a small notes store, keyed by whose notes they are.
//!
//! **In memory only: every note is lost when the process stops.** Each owner
//! keeps at most [`MAX_NOTES_PER_OWNER`] notes; adding one more drops the
//! oldest. Owners only come into being through auth tokens from the trusted
//! auth server, so their number is bounded by what that server grants.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

/// Notes kept per owner.
pub const MAX_NOTES_PER_OWNER: usize = 100;

/// Whose notes: the user (`sub` of the auth token) or, for an autonomous
/// agent, the agent itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Owner {
    /// The auth token's `sub` (E§7.4).
    User(String),
    /// The auth token's `agent`, when no user is involved (E§7.6).
    Agent(String),
}

/// One note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Increasing across the store.
    pub id: u64,
    /// The text.
    pub text: String,
    /// Unix seconds.
    pub created: u64,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    by_owner: HashMap<Owner, VecDeque<Note>>,
}

/// The store.
#[derive(Debug, Default)]
pub struct Notes(Mutex<Inner>);

impl Notes {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a note half-written:
        // every update is a single push or pop.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a note for `owner` at `now` and returns it.
    pub fn add(&self, owner: Owner, text: String, now: u64) -> Note {
        let mut inner = self.inner();
        inner.next_id = inner.next_id.saturating_add(1);
        let note = Note {
            id: inner.next_id,
            text,
            created: now,
        };
        let notes = inner.by_owner.entry(owner).or_default();
        if notes.len() >= MAX_NOTES_PER_OWNER {
            notes.pop_front();
        }
        notes.push_back(note.clone());
        note
    }

    /// `owner`'s notes, oldest first.
    pub fn list(&self, owner: &Owner) -> Vec<Note> {
        self.inner()
            .by_owner
            .get(owner)
            .map(|notes| notes.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_see_only_their_own_notes() {
        let notes = Notes::new();
        let alice = Owner::User("alice".into());
        let agent = Owner::Agent("https://agent.example".into());
        notes.add(alice.clone(), "one".into(), 1);
        notes.add(agent.clone(), "two".into(), 2);
        let listed: Vec<_> = notes.list(&alice).into_iter().map(|n| n.text).collect();
        assert_eq!(listed, ["one"]);
        assert_eq!(notes.list(&agent).len(), 1);
        assert!(notes.list(&Owner::User("bob".into())).is_empty());
    }

    #[test]
    fn a_full_owner_drops_the_oldest_note() {
        let notes = Notes::new();
        let owner = Owner::User("u".into());
        for i in 0..=MAX_NOTES_PER_OWNER {
            notes.add(owner.clone(), i.to_string(), 0);
        }
        let listed = notes.list(&owner);
        assert_eq!(listed.len(), MAX_NOTES_PER_OWNER);
        assert_eq!(listed.first().map(|n| n.text.as_str()), Some("1"));
    }
}
