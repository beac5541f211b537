//! Routing: which resource a request names, which RBAC verb it is, and the answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{Value, json};

use super::apply;
use super::discovery;
use super::log::KubeRequest;
use super::managed::FieldOwner;
use super::patch;
use super::protobuf;
use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::Store;
use super::table;
use super::watch::{self, Body, WatchParams};
use crate::server::BoxError;

/// Larger bodies are refused; nothing a controller sends comes close.
const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct State {
    pub store: Mutex<Store>,
    pub log: Mutex<Vec<KubeRequest>>,
    pub token: String,
    /// Refuse requests without the token too (with TLS, where kubectl sends it).
    pub require_token: bool,
    pub bookmark_interval: Duration,
    pub addr: SocketAddr,
}

impl State {
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, entry: KubeRequest) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }
}

/// The resource a path names.
struct Route {
    ty: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, BoxError> {
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (accept, content_type, user_agent) = (
        header("accept"),
        header("content-type"),
        header("user-agent"),
    );
    let mut entry = KubeRequest {
        verb: "get".into(),
        group: String::new(),
        version: String::new(),
        resource: String::new(),
        subresource: None,
        namespace: None,
        name: None,
        status: 200,
        path: path.clone(),
        user_agent: (!user_agent.is_empty()).then(|| user_agent.clone()),
    };
    // kubectl (client-go) withholds bearer tokens over plain HTTP, so only a wrong
    // credential is refused, not a missing one.
    let authorization = header("authorization");
    if (state.require_token || !authorization.is_empty())
        && authorization != format!("Bearer {}", state.token)
    {
        entry.status = 401;
        state.record(entry);
        return Ok(error(&ApiError::unauthorized()));
    }
    let method = req.method().clone();
    let route = {
        let store = state.store();
        route(&store, &path)
    };
    let route = match route {
        Ok(Some(route)) => route,
        Ok(None) => {
            let resp = non_resource(&state, &path);
            entry.status = resp.status().as_u16();
            state.record(entry);
            return Ok(resp);
        }
        Err(e) => {
            entry.status = e.code;
            state.record(entry);
            return Ok(error(&e));
        }
    };
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    entry.verb = match (&method, route.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watching => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
    .to_string();
    entry.group = route.ty.group.clone();
    entry.version = route.ty.version.clone();
    entry.resource = route.ty.plural.clone();
    entry.subresource = route.subresource.clone();
    entry.namespace = route.namespace.clone();
    entry.name = route.name.clone();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Err(Box::new(e)),
    };
    let ctx = Ctx {
        state: &state,
        route,
        query,
        accept,
        content_type,
        user_agent,
    };
    let result = if body.len() > MAX_BODY {
        Err(ApiError::bad_request(format!(
            "request body of {} bytes is larger than {MAX_BODY}",
            body.len()
        )))
    } else {
        ctx.dispatch(&entry.verb, &body)
    };
    let resp = result.unwrap_or_else(|e| error(&e));
    entry.status = resp.status().as_u16();
    state.record(entry);
    Ok(resp)
}

fn route(store: &Store, path: &str) -> Result<Option<Route>, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => ("", "v1", rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Ok(None),
    };
    let find = |plural: &str| store.find_type(group, version, plural);
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if find(plural).is_some_and(|t| t.namespaced) => {
            (Some(ns.to_string()), [&[*plural][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let no_route = || ApiError::no_route(path);
    let (plural, name, sub) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Err(no_route()),
    };
    let ty = find(plural).ok_or_else(no_route)?;
    if !ty.namespaced && namespace.is_some() {
        return Err(no_route());
    }
    if ty.namespaced && namespace.is_none() && name.is_some() {
        return Err(no_route());
    }
    if let Some(sub) = sub
        && !(sub == "status" && ty.status_subresource)
    {
        return Err(no_route());
    }
    Ok(Some(Route {
        ty,
        namespace,
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    }))
}

fn non_resource(state: &State, path: &str) -> Response<Body> {
    let store = state.store();
    let types = store.types();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let found = match segs.as_slice() {
        ["version"] => Some(discovery::version()),
        ["api"] => Some(discovery::core_versions(&state.addr.to_string())),
        ["api", "v1"] => discovery::resource_list(types, "", "v1"),
        ["apis"] => Some(discovery::group_list(types)),
        ["apis", g] => discovery::group(types, g),
        ["apis", g, v] => discovery::resource_list(types, g, v),
        ["openapi", "v3"] => Some(discovery::openapi_v3_root(types)),
        ["openapi", "v3", gv @ ..] => discovery::openapi_v3_doc(types, &gv.join("/")),
        ["healthz" | "livez" | "readyz"] => {
            return plain(200, "ok");
        }
        _ => None,
    };
    match found {
        Some(v) => json_response(200, &v),
        None => error(&ApiError::no_route(path)),
    }
}

struct Ctx<'a> {
    state: &'a State,
    route: Route,
    query: HashMap<String, String>,
    accept: String,
    content_type: String,
    user_agent: String,
}

impl Ctx<'_> {
    fn ns(&self) -> Option<&str> {
        self.route.namespace.as_deref()
    }

    fn name(&self) -> Result<&str, ApiError> {
        self.route.name.as_deref().ok_or_else(|| {
            ApiError::method_not_allowed("this verb needs an object name in the path")
        })
    }

    fn sub(&self) -> Option<&str> {
        self.route.subresource.as_deref()
    }

    /// `fieldManager`, else what the API server derives from the user agent.
    fn manager(&self) -> String {
        match self.query.get("fieldManager") {
            Some(m) if !m.is_empty() => m.clone(),
            _ => self
                .user_agent
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        }
    }

    fn dispatch(&self, verb: &str, body: &Bytes) -> Result<Response<Body>, ApiError> {
        match verb {
            "get" => return self.get(),
            "list" => return self.list(),
            "watch" => return self.watch(),
            _ => {}
        }
        match self.query.get("dryRun").map(String::as_str) {
            None | Some("") => {}
            // A write against a throw-away copy: answered as usual, seen by nobody.
            Some("All") => {
                let mut scratch = self.state.store().dry_run_copy();
                return self.write(verb, body, &mut scratch);
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "invalid dry run value {other:?}: only \"All\" is supported"
                )));
            }
        }
        self.write(verb, body, &mut self.state.store())
    }

    fn write(
        &self,
        verb: &str,
        body: &Bytes,
        store: &mut Store,
    ) -> Result<Response<Body>, ApiError> {
        match verb {
            "create" => self.create(body, store),
            "update" => self.update(body, store),
            "patch" => self.patch(body, store),
            "delete" => self.delete(body, store),
            "deletecollection" => self.delete_collection(store),
            _ => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
        }
    }

    fn respond(&self, code: u16, obj: &Value) -> Response<Body> {
        if table::wants_table(&self.accept) {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            json_response(
                code,
                &table::table(&self.route.ty, std::slice::from_ref(obj), rv),
            )
        } else if table::wants_metadata(&self.accept) {
            json_response(code, &table::partial_metadata(obj))
        } else {
            json_response(code, obj)
        }
    }

    fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let get = |k: &str| self.query.get(k).map(String::as_str).unwrap_or_default();
        Ok((
            LabelSelector::parse(get("labelSelector"))?,
            FieldSelector::parse(get("fieldSelector"))?,
        ))
    }

    fn get(&self) -> Result<Response<Body>, ApiError> {
        let obj = self
            .state
            .store()
            .get(&self.route.ty, self.ns(), self.name()?)?;
        Ok(self.respond(200, &obj))
    }

    fn list(&self) -> Result<Response<Body>, ApiError> {
        let (labels, fields) = self.selectors()?;
        let (items, rv) = {
            let store = self.state.store();
            (
                store.list(&self.route.ty, self.ns()),
                store.resource_version(),
            )
        };
        let items: Vec<Value> = items
            .into_iter()
            .filter(|o| labels.matches(o) && fields.matches(o))
            .collect();
        let ty = &self.route.ty;
        let list = if table::wants_table(&self.accept) {
            table::table(ty, &items, Some(rv.to_string()))
        } else if table::wants_metadata(&self.accept) {
            json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": rv.to_string()},
                "items": items.iter().map(table::partial_metadata).collect::<Vec<_>>(),
            })
        } else {
            json!({
                "kind": format!("{}List", ty.kind),
                "apiVersion": ty.api_version(),
                "metadata": {"resourceVersion": rv.to_string()},
                "items": items,
            })
        };
        Ok(json_response(200, &list))
    }

    fn watch(&self) -> Result<Response<Body>, ApiError> {
        let (labels, fields) = self.selectors()?;
        let rv = match self.query.get("resourceVersion").map(String::as_str) {
            None | Some("" | "0") => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("resourceVersion {rv:?} is not a number"))
            })?),
        };
        let timeout = match self.query.get("timeoutSeconds") {
            Some(t) => Some(Duration::from_secs(t.parse().map_err(|_| {
                ApiError::bad_request(format!("timeoutSeconds {t:?} is not a number"))
            })?)),
            None => None,
        };
        let flag = |k: &str| matches!(self.query.get(k).map(String::as_str), Some("true" | "1"));
        let params = WatchParams {
            resource_version: rv,
            timeout,
            bookmarks: flag("allowWatchBookmarks"),
            send_initial_events: flag("sendInitialEvents"),
            labels,
            fields,
            table: table::wants_table(&self.accept),
            metadata_only: table::wants_metadata(&self.accept),
        };
        let body = watch::start(
            &self.state.store,
            &self.route.ty,
            self.ns(),
            params,
            self.state.bookmark_interval,
        )?;
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    }

    fn create(&self, body: &Bytes, store: &mut Store) -> Result<Response<Body>, ApiError> {
        if self.route.name.is_some() {
            return Err(ApiError::method_not_allowed(
                "POST goes to the collection, not an object",
            ));
        }
        let obj = parse_json(body)?;
        let owner = FieldOwner::update(&self.manager(), None);
        let created = store.create(&self.route.ty, self.ns(), obj, Some(owner))?;
        Ok(self.respond(201, &created))
    }

    fn update(&self, body: &Bytes, store: &mut Store) -> Result<Response<Body>, ApiError> {
        let obj = parse_json(body)?;
        let owner = FieldOwner::update(&self.manager(), self.sub());
        let updated = store.update(
            &self.route.ty,
            self.ns(),
            self.name()?,
            obj,
            self.sub(),
            Some(owner),
        )?;
        Ok(self.respond(200, &updated))
    }

    fn patch(&self, body: &Bytes, store: &mut Store) -> Result<Response<Body>, ApiError> {
        let media = self
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        let (ty, ns, name, sub) = (&self.route.ty, self.ns(), self.name()?, self.sub());
        if media == "application/apply-patch+yaml" {
            let Some(manager) = self.query.get("fieldManager").filter(|m| !m.is_empty()) else {
                return Err(ApiError::bad_request(
                    "PATCH, application/apply-patch+yaml requires fieldManager parameter",
                ));
            };
            let force = matches!(
                self.query.get("force").map(String::as_str),
                Some("true" | "1")
            );
            let config = apply::parse_config(body)?;
            if let Some(n) = config.pointer("/metadata/name").and_then(Value::as_str)
                && n != name
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            let scoped = apply::scope(ty, sub, &config);
            let old = match store.raw(ty, ns, name) {
                Ok(old) => Some(old.clone()),
                Err(e) if sub.is_some() => return Err(e),
                Err(_) => None,
            };
            let (mut new, owner) =
                apply::apply(ty, name, old.as_ref(), &scoped, manager, sub, force)?;
            if old.is_none() {
                new["metadata"]["name"] = name.into();
                let created = store.create(ty, ns, new, Some(owner))?;
                return Ok(self.respond(201, &created));
            }
            let updated = store.update(ty, ns, name, new, sub, Some(owner))?;
            return Ok(self.respond(200, &updated));
        }
        let patch_body = parse_json(body)?;
        let mut new = store.raw(ty, ns, name)?.clone();
        match media {
            "application/merge-patch+json" => patch::merge_patch(&mut new, &patch_body),
            "application/strategic-merge-patch+json" => {
                patch::strategic_merge_patch(&mut new, &patch_body)
            }
            "application/json-patch+json" => {
                patch::json_patch(&mut new, &patch_body).map_err(ApiError::bad_request)?
            }
            other => return Err(ApiError::unsupported_media_type(other)),
        }
        let owner = FieldOwner::update(&self.manager(), sub);
        let updated = store.update(ty, ns, name, new, sub, Some(owner))?;
        Ok(self.respond(200, &updated))
    }

    fn delete(&self, body: &Bytes, store: &mut Store) -> Result<Response<Body>, ApiError> {
        let (ty, ns, name) = (&self.route.ty, self.ns(), self.name()?);
        if !body.is_empty() {
            let options = parse_json(body)?;
            let current = store.raw(ty, ns, name)?;
            for field in ["uid", "resourceVersion"] {
                if let Some(want) = options.pointer(&format!("/preconditions/{field}"))
                    && !want.is_null()
                    && Some(want) != current.pointer(&format!("/metadata/{field}"))
                {
                    return Err(ApiError::conflict(ty, name));
                }
            }
        }
        let deleted = store.delete(ty, ns, name)?;
        Ok(self.respond(200, &deleted))
    }

    fn delete_collection(&self, store: &mut Store) -> Result<Response<Body>, ApiError> {
        let (labels, fields) = self.selectors()?;
        let ty = &self.route.ty;
        let mut deleted = Vec::new();
        for obj in store.list(ty, self.ns()) {
            if !(labels.matches(&obj) && fields.matches(&obj)) {
                continue;
            }
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let obj_ns = obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string);
            deleted.push(store.delete(ty, obj_ns.as_deref(), &name)?);
        }
        let list = json!({
            "kind": format!("{}List", ty.kind),
            "apiVersion": ty.api_version(),
            "metadata": {"resourceVersion": store.resource_version().to_string()},
            "items": deleted,
        });
        Ok(json_response(200, &list))
    }
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    if protobuf::is_protobuf(body) {
        return protobuf::decode(body).map_err(|e| {
            ApiError::bad_request(format!("cannot decode the protobuf request body: {e}"))
        });
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn plain(code: u16, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(text.to_string()));
    *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
    resp
}

pub fn error(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

fn full(s: String) -> Body {
    Full::new(Bytes::from(s))
        .map_err(|never| -> BoxError { match never {} })
        .boxed_unsync()
}
