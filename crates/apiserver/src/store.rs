//! The SQLite revision log (kine's shape) with an in-memory index of live objects and a watch hub.
//!
//! Every write appends one row; the row id is the object's `resourceVersion`. The latest live row
//! of every key is mirrored in memory (the "watch cache" of kube-apiserver), so gets and lists
//! never touch SQLite. Watches replay rows from the log and then follow a broadcast channel that
//! is fed while the write lock is held, so events arrive in revision order without gaps.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use tokio::sync::broadcast;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed; the database file may be unwritable or corrupt.
    #[error("sqlite store at {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row did not hold JSON.
    #[error("stored row {rev} is not valid JSON: {source}")]
    Corrupt {
        /// The row id.
        rev: i64,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The key already exists (create).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The key does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The caller's resourceVersion is not the current one.
    #[error("{key}: resourceVersion {expected} is stale, the current one is {current}")]
    Conflict {
        /// The key.
        key: String,
        /// What the caller sent.
        expected: i64,
        /// What is stored.
        current: i64,
    },
    /// The requested revision was compacted away.
    #[error("revision {requested} is older than the compacted revision {compacted}")]
    Gone {
        /// The requested revision.
        requested: i64,
        /// The oldest revision still in the log.
        compacted: i64,
    },
}

/// A live object with its revision. Objects are kept serialized: a third of the memory of a
/// parsed tree, and gets, lists and watches send the text as is.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its resourceVersion (the row id of its latest write).
    pub rev: i64,
    /// The object as JSON, with `metadata.resourceVersion` set.
    pub raw: Arc<str>,
}

#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(borrow, rename = "apiVersion", default)]
    api_version: Option<std::borrow::Cow<'a, str>>,
}

/// The top-level `apiVersion` of a JSON object text, without building the tree.
pub fn raw_api_version(raw: &str) -> Option<String> {
    serde_json::from_str::<Head<'_>>(raw)
        .ok()
        .and_then(|h| h.api_version.map(|c| c.into_owned()))
}

fn parse(raw: &str) -> Value {
    // The text was produced by serde_json from a Value, so it parses.
    serde_json::from_str(raw).unwrap_or(Value::Null)
}

impl Stored {
    /// The parsed object.
    pub fn obj(&self) -> Value {
        parse(&self.raw)
    }
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted (the object is its last state).
    Deleted,
}

impl EventType {
    /// The watch event type string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed write.
#[derive(Debug, Clone)]
pub struct Event {
    /// The revision of the write.
    pub rev: i64,
    /// The key written.
    pub key: String,
    /// What happened.
    pub kind: EventType,
    /// The object after the write (or its last state for a delete), as JSON.
    pub raw: Arc<str>,
    /// The object before an update (absent once compacted away). Watches
    /// with selectors use it to turn updates that enter or leave the selection into ADDED or
    /// DELETED, as kube-apiserver does.
    pub prev: Option<Arc<str>>,
}

impl Event {
    /// The parsed object.
    pub fn obj(&self) -> Value {
        parse(&self.raw)
    }
}

/// The start of a watch: the logged events to replay, then the live feed.
pub type WatchStart = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

struct Inner {
    conn: Connection,
    rev: i64,
    compacted: i64,
    objects: BTreeMap<String, Stored>,
    /// Revision of the latest write per `/registry/<group>/` (since open): lets readers cache
    /// what they derive from one group (the RBAC policy) without rebuilding on every write.
    group_revs: std::collections::HashMap<String, i64>,
}

fn group_prefix(key: &str) -> &str {
    let end = key
        .strip_prefix("/registry/")
        .and_then(|rest| rest.find('/'))
        .map(|i| "/registry/".len() + i + 1)
        .unwrap_or(key.len());
    &key[..end]
}

/// The store: one SQLite file, an in-memory index and a watch hub.
pub struct Store {
    path: String,
    inner: Mutex<Inner>,
    hub: broadcast::Sender<Arc<Event>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name);
CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id);
CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// How hard the store pushes an acknowledged write towards the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a write acknowledged survives the server process being
    /// killed; the newest writes may be lost when the machine loses power.
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: the WAL is synced to disk before a write is acknowledged, so
    /// it also survives a power cut, at the cost of one fsync per write.
    Strict,
}

impl std::str::FromStr for Durability {
    type Err = String;

    /// `normal` or `strict`, as the `--durability` flag spells them.
    fn from_str(s: &str) -> Result<Durability, String> {
        match s {
            "normal" => Ok(Durability::Normal),
            "strict" => Ok(Durability::Strict),
            other => Err(format!("{other:?} is not a durability: normal or strict")),
        }
    }
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Strict => "FULL",
        }
    }
}

/// The exclusive upper bound of keys starting with `prefix` (keys are ASCII).
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{7f}")
}

impl Store {
    /// Opens (or creates) the database at `path` and loads the live objects, with
    /// [`Durability::Normal`].
    ///
    /// Guarantees: WAL journal with `synchronous=NORMAL`, so a write acknowledged by this store
    /// is in the OS page cache before the call returns and survives the process being killed.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, Durability::Normal)
    }

    /// Opens (or creates) the database at `path` with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        let p = path.display().to_string();
        let sq = |source| StoreError::Sqlite {
            path: p.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(sq)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={}; PRAGMA busy_timeout=5000;",
            durability.pragma()
        ))
        .map_err(sq)?;
        conn.execute_batch(SCHEMA).map_err(sq)?;
        let max_id: i64 = conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM kine", [], |r| r.get(0))
            .map_err(sq)?;
        let compacted: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'compact_rev'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sq)?
            .unwrap_or(0);
        let mut objects = BTreeMap::new();
        {
            let mut stmt = conn
                .prepare(
                    "SELECT k.id, k.name, k.value FROM kine k \
                     JOIN (SELECT name, MAX(id) AS mid FROM kine GROUP BY name) m ON k.id = m.mid \
                     WHERE k.deleted = 0",
                )
                .map_err(sq)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(sq)?;
            for row in rows {
                let (rev, name, value) = row.map_err(sq)?;
                serde_json::from_str::<serde::de::IgnoredAny>(&value)
                    .map_err(|source| StoreError::Corrupt { rev, source })?;
                objects.insert(
                    name,
                    Stored {
                        rev,
                        raw: Arc::from(value),
                    },
                );
            }
        }
        let (hub, _) = broadcast::channel(16 * 1024);
        Ok(Store {
            path: p,
            inner: Mutex::new(Inner {
                conn,
                rev: max_id.max(compacted),
                compacted,
                group_revs: Default::default(),
                objects,
            }),
            hub,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the index consistent with the log (the map is
        // updated only after a successful insert), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sq(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The current revision of the whole store.
    pub fn revision(&self) -> i64 {
        self.lock().rev
    }

    /// The revision of the latest write (since open) under `/registry/<group>/`, 0 if none.
    pub fn group_revision(&self, group_prefix: &str) -> i64 {
        self.lock()
            .group_revs
            .get(group_prefix)
            .copied()
            .unwrap_or(0)
    }

    /// The oldest revision a watch may resume from.
    pub fn compacted_revision(&self) -> i64 {
        self.lock().compacted
    }

    /// The live object at `key`.
    pub fn get(&self, key: &str) -> Option<Stored> {
        self.lock().objects.get(key).cloned()
    }

    /// All live objects whose key starts with `prefix`, in key order, and the store revision.
    pub fn list(&self, prefix: &str) -> (i64, Vec<(String, Stored)>) {
        let inner = self.lock();
        let items = inner
            .objects
            .range(prefix.to_string()..prefix_end(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (inner.rev, items)
    }

    /// Number of live keys under `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.lock()
            .objects
            .range(prefix.to_string()..prefix_end(prefix))
            .count()
    }

    /// Writes `obj` at `key`. `create` requires the key to be absent; otherwise the key must exist
    /// and, when `expected` is given, be at that revision. `obj`'s resourceVersion is set to the
    /// new revision. Returns the stored object.
    pub fn put(
        &self,
        key: &str,
        obj: Value,
        create: bool,
        expected: Option<i64>,
    ) -> Result<Stored, StoreError> {
        let mut inner = self.lock();
        let prev_raw = inner.objects.get(key).map(|s| s.raw.clone());
        let prev = inner.objects.get(key).map(|s| s.rev);
        match (create, prev) {
            (true, Some(_)) => return Err(StoreError::AlreadyExists(key.to_string())),
            (false, None) => return Err(StoreError::NotFound(key.to_string())),
            (false, Some(cur)) => {
                if let Some(exp) = expected
                    && exp != cur
                {
                    return Err(StoreError::Conflict {
                        key: key.to_string(),
                        expected: exp,
                        current: cur,
                    });
                }
            }
            (true, None) => {}
        }
        let rev = inner.rev + 1;
        // A re-created key continues its history after the tombstone (kine's prev_revision).
        let prev = match prev {
            Some(p) => Some(p),
            None => inner
                .conn
                .prepare_cached("SELECT MAX(id) FROM kine WHERE name = ?1")
                .and_then(|mut st| st.query_row(params![key], |r| r.get::<_, Option<i64>>(0)))
                .map_err(|e| self.sq(e))?,
        };
        let mut obj = obj;
        set_resource_version(&mut obj, rev);
        let text = obj.to_string();
        inner
            .conn
            .prepare_cached(
                "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value) \
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    rev,
                    key,
                    create as i64,
                    if create { rev } else { 0 },
                    prev.unwrap_or(0),
                    text
                ])
            })
            .map_err(|e| self.sq(e))?;
        inner.rev = rev;
        inner.group_revs.insert(group_prefix(key).to_string(), rev);
        let stored = Stored {
            rev,
            raw: Arc::from(text),
        };
        inner.objects.insert(key.to_string(), stored.clone());
        let _ = self.hub.send(Arc::new(Event {
            rev,
            key: key.to_string(),
            kind: if create {
                EventType::Added
            } else {
                EventType::Modified
            },
            raw: stored.raw.clone(),
            prev: prev_raw,
        }));
        Ok(stored)
    }

    /// Deletes `key` (at revision `expected` if given) and returns its last state, stamped with
    /// the deletion revision.
    pub fn delete(&self, key: &str, expected: Option<i64>) -> Result<Stored, StoreError> {
        let mut inner = self.lock();
        let Some(cur) = inner.objects.get(key).cloned() else {
            return Err(StoreError::NotFound(key.to_string()));
        };
        if let Some(exp) = expected
            && exp != cur.rev
        {
            return Err(StoreError::Conflict {
                key: key.to_string(),
                expected: exp,
                current: cur.rev,
            });
        }
        let rev = inner.rev + 1;
        let mut obj = cur.obj();
        set_resource_version(&mut obj, rev);
        let text = obj.to_string();
        inner
            .conn
            .prepare_cached(
                "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value) \
                 VALUES (?1, ?2, 0, 1, 0, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![rev, key, cur.rev, text]))
            .map_err(|e| self.sq(e))?;
        inner.rev = rev;
        inner.group_revs.insert(group_prefix(key).to_string(), rev);
        inner.objects.remove(key);
        let raw: Arc<str> = Arc::from(text);
        let _ = self.hub.send(Arc::new(Event {
            rev,
            key: key.to_string(),
            kind: EventType::Deleted,
            raw: raw.clone(),
            prev: None,
        }));
        Ok(Stored { rev, raw })
    }

    /// A receiver of every write from now on (e.g. to wait for a revision).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.hub.subscribe()
    }

    /// Starts a watch of keys under `prefix` after revision `from`: the events already in the log
    /// after `from`, and a receiver of every later write.
    ///
    /// Errors: [`StoreError::Gone`] when `from` is older than the compacted revision.
    pub fn watch(&self, prefix: &str, from: i64) -> Result<WatchStart, StoreError> {
        let inner = self.lock();
        let rx = self.hub.subscribe();
        if from >= inner.rev {
            return Ok((Vec::new(), rx));
        }
        if from < inner.compacted {
            return Err(StoreError::Gone {
                requested: from,
                compacted: inner.compacted,
            });
        }
        let mut stmt = inner
            .conn
            .prepare_cached(
                "SELECT k.id, k.name, k.created, k.deleted, k.value, p.value FROM kine k \
                 LEFT JOIN kine p ON p.id = k.prev_revision AND k.deleted = 0 \
                 WHERE k.id > ?1 AND k.name >= ?2 AND k.name < ?3 ORDER BY k.id",
            )
            .map_err(|e| self.sq(e))?;
        let rows = stmt
            .query_map(params![from, prefix, prefix_end(prefix)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(|e| self.sq(e))?;
        let mut events = Vec::new();
        for row in rows {
            let (rev, key, created, deleted, value, prev) = row.map_err(|e| self.sq(e))?;
            let kind = if deleted != 0 {
                EventType::Deleted
            } else if created != 0 {
                EventType::Added
            } else {
                EventType::Modified
            };
            events.push(Arc::new(Event {
                rev,
                key,
                kind,
                raw: Arc::from(value),
                prev: prev.map(Arc::from),
            }));
        }
        Ok((events, rx))
    }

    /// Removes superseded revisions and tombstones older than the newest `retain` revisions.
    /// Returns the number of rows removed.
    pub fn compact(&self, retain: i64) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let target = inner.rev - retain;
        if target <= inner.compacted {
            return Ok(0);
        }
        let tx = inner.conn.transaction().map_err(|e| self.sq(e))?;
        let n = tx
            .execute(
                "DELETE FROM kine WHERE id <= ?1 AND (deleted = 1 OR id IN \
                 (SELECT prev_revision FROM kine WHERE id <= ?1))",
                params![target],
            )
            .map_err(|e| self.sq(e))?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('compact_rev', ?1) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![target],
        )
        .map_err(|e| self.sq(e))?;
        tx.commit().map_err(|e| self.sq(e))?;
        inner.compacted = target;
        Ok(n)
    }

    /// Checks the revision log: SQLite's own integrity check, every row's value is JSON, and every
    /// row's history points backwards (`prev_revision < id`, a created row has
    /// `create_revision = id`). Returns the problems found, empty when the log is sound.
    pub fn check_log(&self) -> Result<Vec<String>, StoreError> {
        let inner = self.lock();
        let mut problems = Vec::new();
        let integrity: String = inner
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.sq(e))?;
        if integrity != "ok" {
            problems.push(format!("integrity_check: {integrity}"));
        }
        let mut stmt = inner
            .conn
            .prepare(
                "SELECT id, name, created, create_revision, prev_revision, value FROM kine \
                 WHERE prev_revision >= id OR (created = 1 AND create_revision != id) \
                 OR json_valid(value) = 0 LIMIT 100",
            )
            .map_err(|e| self.sq(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(format!(
                    "row {} ({}): created {} create_revision {} prev_revision {}",
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(|e| self.sq(e))?;
        for row in rows {
            problems.push(row.map_err(|e| self.sq(e))?);
        }
        Ok(problems)
    }

    /// Rows currently in the log (for tests and metrics).
    pub fn log_len(&self) -> Result<i64, StoreError> {
        let inner = self.lock();
        inner
            .conn
            .query_row("SELECT COUNT(*) FROM kine", [], |r| r.get(0))
            .map_err(|e| self.sq(e))
    }
}

/// Sets `metadata.resourceVersion` to `rev`.
pub fn set_resource_version(obj: &mut Value, rev: i64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(name: &str) -> Value {
        json!({"metadata": {"name": name}, "data": {"a": name}})
    }

    #[test]
    fn group_revision_moves_only_with_its_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("db.sqlite")).expect("open");
        let rbac = "/registry/rbac.authorization.k8s.io/";
        assert_eq!(s.group_revision(rbac), 0);
        let r = s
            .put(&format!("{rbac}roles/ns/a"), obj("a"), true, None)
            .expect("put");
        assert_eq!(s.group_revision(rbac), r.rev);
        s.put("/registry/core/configmaps/ns/b", obj("b"), true, None)
            .expect("put");
        assert_eq!(s.group_revision(rbac), r.rev);
        let d = s
            .delete(&format!("{rbac}roles/ns/a"), None)
            .expect("delete");
        assert!(s.group_revision(rbac) > r.rev);
        assert_eq!(s.group_revision("/registry/core/"), d.rev - 1);
    }

    #[test]
    fn revisions_concurrency_and_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let s = Store::open(&path).expect("open");
        let a = s.put("/r/cm/ns/a", obj("a"), true, None).expect("create");
        assert_eq!(a.rev, 1);
        assert!(matches!(
            s.put("/r/cm/ns/a", obj("a"), true, None),
            Err(StoreError::AlreadyExists(_))
        ));
        let a2 = s
            .put("/r/cm/ns/a", obj("a2"), false, Some(1))
            .expect("update");
        assert_eq!(a2.rev, 2);
        assert_eq!(a2.obj()["metadata"]["resourceVersion"], "2");
        assert!(matches!(
            s.put("/r/cm/ns/a", obj("a3"), false, Some(1)),
            Err(StoreError::Conflict { current: 2, .. })
        ));
        s.put("/r/cm/ns/b", obj("b"), true, None).expect("create b");
        s.delete("/r/cm/ns/b", None).expect("delete b");
        s.put("/r/cm/ns/b", obj("b"), true, None)
            .expect("re-create b");
        s.delete("/r/cm/ns/b", None).expect("delete b again");
        drop(s);
        let s = Store::open(&path).expect("reopen");
        assert_eq!(s.revision(), 6);
        assert_eq!(s.get("/r/cm/ns/a").expect("a").obj()["data"]["a"], "a2");
        assert_eq!(
            raw_api_version(r#"{"aggregationRule":{"apiVersion":"x"},"apiVersion":"v1"}"#)
                .as_deref(),
            Some("v1")
        );
        assert!(s.get("/r/cm/ns/b").is_none());
        assert_eq!(s.list("/r/cm/").1.len(), 1);
    }

    #[test]
    fn watch_replays_and_compaction_answers_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("db.sqlite")).expect("open");
        for i in 0..5 {
            s.put(&format!("/r/cm/ns/k{i}"), obj("x"), true, None)
                .expect("create");
        }
        s.put("/r/cm/ns/k0", obj("y"), false, None).expect("update");
        s.put("/r/other/ns/z", obj("z"), true, None).expect("other");
        let (events, _rx) = s.watch("/r/cm/", 3).expect("watch");
        let revs: Vec<i64> = events.iter().map(|e| e.rev).collect();
        assert_eq!(revs, vec![4, 5, 6]);
        assert_eq!(events[2].kind, EventType::Modified);
        let removed = s.compact(1).expect("compact");
        assert_eq!(removed, 1, "only k0's first revision is superseded");
        assert!(matches!(s.watch("/r/cm/", 3), Err(StoreError::Gone { .. })));
        assert!(s.watch("/r/cm/", 6).is_ok());
        assert_eq!(s.log_len().expect("len"), 6);
    }
}
