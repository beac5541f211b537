//! What clients asked the stand-in for, in Kubernetes RBAC terms, so tests can hold a chart's
//! RBAC rules against what a controller really used.

/// One request. Resource requests carry the RBAC verb (`get`, `list`, `watch`, `create`,
/// `update`, `patch`, `delete`, `deletecollection`) and the resource they touched; discovery
/// and other non-resource requests have an empty `resource` and the verb `get`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeRequest {
    pub verb: String,
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The HTTP status answered (for a watch: when its stream started).
    pub status: u16,
    /// The URL path, without the query.
    pub path: String,
    pub user_agent: Option<String>,
}

impl KubeRequest {
    /// `(verb, group, resource, subresource, namespace)`: the shape RBAC rules talk about.
    pub fn rbac(&self) -> (&str, &str, &str, Option<&str>, Option<&str>) {
        (
            &self.verb,
            &self.group,
            &self.resource,
            self.subresource.as_deref(),
            self.namespace.as_deref(),
        )
    }

    /// `resource` or `resource/subresource`, as RBAC rules spell it.
    pub fn rbac_resource(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.clone(),
        }
    }

    pub fn is_resource_request(&self) -> bool {
        !self.resource.is_empty()
    }
}
