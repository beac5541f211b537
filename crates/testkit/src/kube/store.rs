//! The stand-in's state: resource types, objects, the global resourceVersion counter and the
//! watch history. Every write goes through here, under one lock, so resourceVersions are
//! strictly increasing in the order clients observe them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::managed::{self, FieldOwner};
use super::resources::{self, ResourceType};
use super::status::ApiError;
use super::strategy::{self, finalizers_empty, is_deleting, new_uid, random_suffix};
use crate::util::{rfc3339, unix_now};

/// One change, as a watch sends it.
#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub type_: &'static str,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub object: Value,
    /// For MODIFIED: the object before, so a watch with a selector can tell an object that
    /// stopped matching (DELETED for that watch) from one that started to (ADDED).
    pub previous: Option<Value>,
}

/// Missed events to replay, and the live ones after them.
pub type Replay = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

/// `(group, plural)`: objects are shared by every version of a resource.
type TypeKey = (String, String);
/// `(namespace or "", name)`.
type ObjKey = (String, String);

pub struct Store {
    rv: u64,
    types: Vec<ResourceType>,
    objects: BTreeMap<TypeKey, BTreeMap<ObjKey, Value>>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Events up to this resourceVersion are no longer in `history`.
    compacted: u64,
    events: broadcast::Sender<Arc<Event>>,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        let (events, _) = broadcast::channel(4096);
        let mut store = Store {
            rv: 0,
            types: resources::builtins(),
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit,
            compacted: 0,
            events,
        };
        if let Some(ty) = store.find_type("", "v1", "namespaces") {
            let default = json!({"metadata": {"name": "default"}});
            // Cannot fail on an empty store: the namespace is new and valid.
            let _ = store.create(&ty, None, default, None);
        }
        store
    }

    /// A copy to run a `dryRun=All` write against: same objects, nobody watching.
    pub fn dry_run_copy(&self) -> Store {
        Store {
            rv: self.rv,
            types: self.types.clone(),
            objects: self.objects.clone(),
            history: VecDeque::new(),
            history_limit: 0,
            compacted: self.compacted,
            events: broadcast::channel(1).0,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The stored object, or 404.
    pub fn get(&self, ty: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&type_key(ty))
            .and_then(|objs| objs.get(&obj_key(ty, ns, name)))
            .map(|o| served(ty, o))
            .ok_or_else(|| ApiError::not_found(ty, name))
    }

    /// Objects of `ty`, in one namespace or (with `None`) all of them.
    pub fn list(&self, ty: &ResourceType, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .get(&type_key(ty))
            .map(|objs| {
                objs.iter()
                    .filter(|((o_ns, _), _)| ns.is_none_or(|n| !ty.namespaced || n == o_ns))
                    .map(|(_, o)| served(ty, o))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates `obj` (namespace from the URL); `owner` records who wrote which fields.
    pub fn create(
        &mut self,
        ty: &ResourceType,
        ns: Option<&str>,
        mut obj: Value,
        owner: Option<FieldOwner>,
    ) -> Result<Value, ApiError> {
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        };
        check_kind(ty, map)?;
        map.insert("apiVersion".into(), ty.api_version().into());
        map.insert("kind".into(), ty.kind.clone().into());
        if ty.status_subresource && ty.custom {
            map.remove("status");
        }
        let meta = metadata_mut(map);
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => format!("{prefix}{}", random_suffix()),
                _ => {
                    return Err(ApiError::invalid(
                        ty,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        meta.insert("name".into(), name.clone().into());
        let ns = self.namespace_for(ty, ns, meta)?;
        if let Some(ns) = &ns {
            meta.insert("namespace".into(), ns.clone().into());
        } else {
            meta.remove("namespace");
        }
        let key = obj_key(ty, ns.as_deref(), &name);
        if self
            .objects
            .get(&type_key(ty))
            .is_some_and(|objs| objs.contains_key(&key))
        {
            return Err(ApiError::already_exists(ty, &name));
        }
        for server_set in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
            meta.remove(server_set);
        }
        meta.insert("uid".into(), new_uid().into());
        meta.insert("creationTimestamp".into(), rfc3339(unix_now()).into());
        if ty.generation {
            meta.insert("generation".into(), 1.into());
        } else {
            meta.remove("generation");
        }
        strategy::prepare(&mut self.types, ty, &mut obj, None)?;
        if let Some(owner) = owner {
            managed::record(&mut obj, None, &owner, &ty.api_version());
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = self.rv.to_string().into();
        self.objects
            .entry(type_key(ty))
            .or_default()
            .insert(key, obj.clone());
        self.emit("ADDED", ty, &obj, None);
        Ok(served(ty, &obj))
    }

    /// Replaces the stored object with `new` (already merged or patched by the caller). With
    /// a status subresource, `subresource` decides whether only `.status` or everything but
    /// `.status` may change.
    pub fn update(
        &mut self,
        ty: &ResourceType,
        ns: Option<&str>,
        name: &str,
        mut new: Value,
        subresource: Option<&str>,
        owner: Option<FieldOwner>,
    ) -> Result<Value, ApiError> {
        let old = self.raw(ty, ns, name)?.clone();
        let Some(map) = new.as_object_mut() else {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        };
        check_kind(ty, map)?;
        let meta = metadata_mut(map);
        match meta.get("name").and_then(Value::as_str) {
            Some(n) if n == name => {}
            None => {
                meta.insert("name".into(), name.into());
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({other}) does not match the name on the URL ({name})"
                )));
            }
        }
        if let Some(rv) = meta.get("resourceVersion").and_then(Value::as_str)
            && !rv.is_empty()
            && Some(rv)
                != old
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
        {
            return Err(ApiError::conflict(ty, name));
        }
        let mut new = if subresource == Some("status") {
            // Only the status (and, through the owner below, its managed fields) changes.
            let mut merged = old.clone();
            match new.get("status") {
                Some(status) => merged["status"] = status.clone(),
                None => {
                    if let Some(m) = merged.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            if let Some(fields) = new.pointer("/metadata/managedFields") {
                merged["metadata"]["managedFields"] = fields.clone();
            }
            merged
        } else {
            if ty.status_subresource {
                match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            new
        };
        new["apiVersion"] = old["apiVersion"].clone();
        new["kind"] = ty.kind.clone().into();
        for server_set in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "generation",
        ] {
            match old["metadata"].get(server_set) {
                Some(v) => new["metadata"][server_set] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(server_set);
                    }
                }
            }
        }
        strategy::prepare(&mut self.types, ty, &mut new, Some(&old))?;
        if let Some(owner) = owner {
            managed::record(&mut new, Some(&old), &owner, &ty.api_version());
        }
        if managed::same_ignoring_bookkeeping(&old, &new) {
            // A no-op write must not bump the resourceVersion: controllers that write their
            // status on every reconcile would otherwise wake themselves forever.
            return Ok(served(ty, &old));
        }
        if ty.generation && without_meta_and_status(&old) != without_meta_and_status(&new) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            new["metadata"]["generation"] = (generation + 1).into();
        }
        self.rv += 1;
        new["metadata"]["resourceVersion"] = self.rv.to_string().into();
        let finalized = is_deleting(&new) && finalizers_empty(&new);
        self.put(ty, ns, name, new.clone());
        self.emit("MODIFIED", ty, &new, Some(old));
        if finalized {
            self.remove(ty, ns, name)?;
        }
        Ok(served(ty, &new))
    }

    /// Deletes now, or (with finalizers) marks the object as being deleted.
    pub fn delete(
        &mut self,
        ty: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let old = self.raw(ty, ns, name)?.clone();
        if finalizers_empty(&old) {
            return self.remove(ty, ns, name);
        }
        if is_deleting(&old) {
            return Ok(served(ty, &old));
        }
        let mut new = old.clone();
        new["metadata"]["deletionTimestamp"] = rfc3339(unix_now()).into();
        new["metadata"]["deletionGracePeriodSeconds"] = 0.into();
        if ty.generation {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            new["metadata"]["generation"] = (generation + 1).into();
        }
        self.rv += 1;
        new["metadata"]["resourceVersion"] = self.rv.to_string().into();
        self.put(ty, ns, name, new.clone());
        self.emit("MODIFIED", ty, &new, Some(old));
        Ok(served(ty, &new))
    }

    /// The stored object itself (apiVersion as written), for patching.
    pub fn raw(&self, ty: &ResourceType, ns: Option<&str>, name: &str) -> Result<&Value, ApiError> {
        self.objects
            .get(&type_key(ty))
            .and_then(|objs| objs.get(&obj_key(ty, ns, name)))
            .ok_or_else(|| ApiError::not_found(ty, name))
    }

    /// Events after `rv` for `ty` (optionally in one namespace) plus a receiver for later ones,
    /// taken under the same lock so nothing falls between them; 410 Gone when history no
    /// longer reaches back to `rv`.
    pub fn watch_from(
        &self,
        ty: &ResourceType,
        ns: Option<&str>,
        rv: u64,
    ) -> Result<Replay, ApiError> {
        if rv < self.compacted {
            return Err(ApiError::gone(rv, self.compacted + 1));
        }
        let replay = self
            .history
            .iter()
            .filter(|e| e.rv > rv && matches_event(ty, ns, e))
            .cloned()
            .collect();
        Ok((replay, self.events.subscribe()))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Forgets the watch history: a watch from any older resourceVersion gets 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    fn put(&mut self, ty: &ResourceType, ns: Option<&str>, name: &str, obj: Value) {
        self.objects
            .entry(type_key(ty))
            .or_default()
            .insert(obj_key(ty, ns, name), obj);
    }

    /// Deletes for good, with what depends on the object: a namespace's contents, a CRD's
    /// resources, and objects it owns (background garbage collection).
    fn remove(
        &mut self,
        ty: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let Some(mut obj) = self
            .objects
            .get_mut(&type_key(ty))
            .and_then(|objs| objs.remove(&obj_key(ty, ns, name)))
        else {
            return Err(ApiError::not_found(ty, name));
        };
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = self.rv.to_string().into();
        self.emit("DELETED", ty, &obj, None);
        let mut dependents: Vec<(ResourceType, Option<String>, String)> = Vec::new();
        let uid = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if ty.group.is_empty() && ty.plural == "namespaces" {
            self.collect(&mut dependents, |t, o_ns, _| t.namespaced && o_ns == name);
        } else if ty.plural == "customresourcedefinitions"
            && let Ok(defined) = resources::from_crd(&obj)
        {
            if let Some(first) = defined.first() {
                let (g, p) = (first.group.clone(), first.plural.clone());
                self.collect(&mut dependents, |t, _, _| t.group == g && t.plural == p);
            }
            self.types.retain(|t| {
                !defined
                    .iter()
                    .any(|d| d.group == t.group && d.plural == t.plural && t.custom)
            });
        }
        self.collect(&mut dependents, |_, _, o| {
            o.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        });
        for (dep_ty, dep_ns, dep_name) in dependents {
            // Already gone through an earlier cascade in this loop: nothing left to do.
            let _ = self.remove(&dep_ty, dep_ns.as_deref(), &dep_name);
        }
        Ok(served(ty, &obj))
    }

    fn collect(
        &self,
        out: &mut Vec<(ResourceType, Option<String>, String)>,
        pred: impl Fn(&ResourceType, &str, &Value) -> bool,
    ) {
        for ((group, plural), objs) in &self.objects {
            let Some(ty) = self
                .types
                .iter()
                .find(|t| &t.group == group && &t.plural == plural)
            else {
                continue;
            };
            for ((o_ns, o_name), o) in objs {
                if pred(ty, o_ns, o) {
                    let ns = ty.namespaced.then(|| o_ns.clone());
                    out.push((ty.clone(), ns, o_name.clone()));
                }
            }
        }
    }

    /// The namespace an object of `ty` lives in: the URL's, which must exist and agree with
    /// the body's.
    fn namespace_for(
        &self,
        ty: &ResourceType,
        url_ns: Option<&str>,
        meta: &Map<String, Value>,
    ) -> Result<Option<String>, ApiError> {
        if !ty.namespaced {
            return Ok(None);
        }
        let body_ns = meta
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let ns = match (url_ns, body_ns) {
            (Some(u), Some(b)) if u != b => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (Some(u), _) => u,
            (None, Some(b)) => b,
            (None, None) => return Err(ApiError::bad_request("a namespace is required")),
        };
        let ns_key = (String::new(), ns.to_string());
        let exists = self
            .objects
            .get(&(String::new(), "namespaces".to_string()))
            .is_some_and(|objs| objs.contains_key(&ns_key));
        if !exists {
            let ns_ty = self.find_type("", "v1", "namespaces");
            return Err(match ns_ty {
                Some(t) => ApiError::not_found(&t, ns),
                None => ApiError::bad_request(format!("namespace {ns} does not exist")),
            });
        }
        Ok(Some(ns.to_string()))
    }

    fn emit(
        &mut self,
        type_: &'static str,
        ty: &ResourceType,
        obj: &Value,
        previous: Option<Value>,
    ) {
        let event = Arc::new(Event {
            rv: self.rv,
            type_,
            group: ty.group.clone(),
            plural: ty.plural.clone(),
            namespace: obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            object: obj.clone(),
            previous,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }
}

pub fn matches_event(ty: &ResourceType, ns: Option<&str>, e: &Event) -> bool {
    e.group == ty.group && e.plural == ty.plural && ns.is_none_or(|n| n == e.namespace)
}

/// The object as served at `ty`'s version (one schema for all versions: no conversion).
pub fn served(ty: &ResourceType, obj: &Value) -> Value {
    let mut obj = obj.clone();
    obj["apiVersion"] = ty.api_version().into();
    obj
}

fn type_key(ty: &ResourceType) -> TypeKey {
    (ty.group.clone(), ty.plural.clone())
}

fn obj_key(ty: &ResourceType, ns: Option<&str>, name: &str) -> ObjKey {
    let ns = if ty.namespaced {
        ns.unwrap_or_default()
    } else {
        ""
    };
    (ns.to_string(), name.to_string())
}

fn check_kind(ty: &ResourceType, map: &Map<String, Value>) -> Result<(), ApiError> {
    match map.get("kind").and_then(Value::as_str) {
        Some(kind) if !kind.is_empty() && kind != ty.kind => Err(ApiError::bad_request(format!(
            "the kind of the body ({kind}) does not match the resource {} (kind {})",
            ty.group_resource(),
            ty.kind
        ))),
        _ => Ok(()),
    }
}

fn metadata_mut(map: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    match meta {
        Value::Object(m) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

fn without_meta_and_status(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(m) = obj.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    obj
}
