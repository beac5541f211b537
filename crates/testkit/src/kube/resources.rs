//! The resource types the stand-in serves: built-ins, and whatever applied CRDs declare.

use serde_json::Value;

/// One served `group/version` resource.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceType {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    /// Whether the server keeps `metadata.generation` (custom resources and CRDs do; secrets
    /// and config maps do not).
    pub generation: bool,
    /// Columns after NAME in table output.
    pub columns: Vec<PrinterColumn>,
    /// Defined by a CRD (removed with it) rather than built in.
    pub custom: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

impl PrinterColumn {
    fn new(name: &str, type_: &str, json_path: &str) -> Self {
        PrinterColumn {
            name: name.to_string(),
            type_: type_.to_string(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: json_path.to_string(),
        }
    }

    fn age() -> Self {
        Self::new("Age", "date", ".metadata.creationTimestamp")
    }
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `secrets` or `ecrimagemirrors.ferry.dev`, as error messages name resources.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Secret` or `EcrImageMirror.ferry.dev`, as validation messages name kinds.
    pub fn kind_group(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    fn builtin(group: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        ResourceType {
            group: group.to_string(),
            version: "v1".to_string(),
            plural: plural.to_string(),
            singular: kind.to_lowercase(),
            kind: kind.to_string(),
            namespaced,
            short_names: Vec::new(),
            categories: Vec::new(),
            status_subresource: false,
            generation: false,
            columns: vec![PrinterColumn::age()],
            custom: false,
        }
    }
}

pub fn builtins() -> Vec<ResourceType> {
    let mut namespaces = ResourceType::builtin("", "namespaces", "Namespace", false);
    namespaces.short_names = vec!["ns".into()];
    namespaces.status_subresource = true;
    namespaces.columns = vec![
        PrinterColumn::new("Status", "string", ".status.phase"),
        PrinterColumn::age(),
    ];
    let mut secrets = ResourceType::builtin("", "secrets", "Secret", true);
    secrets.columns = vec![
        PrinterColumn::new("Type", "string", ".type"),
        PrinterColumn::age(),
    ];
    let mut configmaps = ResourceType::builtin("", "configmaps", "ConfigMap", true);
    configmaps.short_names = vec!["cm".into()];
    let mut events = ResourceType::builtin("", "events", "Event", true);
    events.short_names = vec!["ev".into()];
    let new_events = ResourceType::builtin("events.k8s.io", "events", "Event", true);
    let mut leases = ResourceType::builtin("coordination.k8s.io", "leases", "Lease", true);
    leases.columns = vec![
        PrinterColumn::new("Holder", "string", ".spec.holderIdentity"),
        PrinterColumn::age(),
    ];
    let mut crds = ResourceType::builtin(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
    );
    crds.short_names = vec!["crd".into(), "crds".into()];
    crds.categories = vec!["api-extensions".into()];
    crds.status_subresource = true;
    crds.generation = true;
    crds.columns = vec![PrinterColumn::new(
        "Created At",
        "string",
        ".metadata.creationTimestamp",
    )];
    vec![
        namespaces, secrets, configmaps, events, new_events, leases, crds,
    ]
}

/// The resource types a CRD declares, one per served version.
pub fn from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let str_at = |v: &Value, key: &str| -> Result<String, String> {
        v.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("spec.{key}: Required value"))
    };
    let group = str_at(spec, "group")?;
    let names = spec.get("names").ok_or("spec.names: Required value")?;
    let plural = str_at(names, "plural").map_err(|e| e.replace("spec.", "spec.names."))?;
    let kind = str_at(names, "kind").map_err(|e| e.replace("spec.", "spec.names."))?;
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = match spec.get("scope").and_then(Value::as_str) {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => {
            return Err(format!(
                "spec.scope: Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
            ));
        }
    };
    let expected_name = format!("{plural}.{group}");
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name != expected_name {
        return Err(format!(
            "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group ({expected_name:?})"
        ));
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or(
            "spec.versions: Invalid value: must have exactly one version marked as storage version",
        )?;
    let mut types = Vec::new();
    for version in versions {
        let version_name =
            str_at(version, "name").map_err(|e| e.replace("spec.", "spec.versions[]."))?;
        if !version
            .get("served")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            continue;
        }
        let columns = match version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
        {
            Some(cols) => cols.iter().map(printer_column).collect::<Result<_, _>>()?,
            None => vec![PrinterColumn::age()],
        };
        types.push(ResourceType {
            group: group.clone(),
            version: version_name,
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            status_subresource: version.pointer("/subresources/status").is_some(),
            generation: true,
            columns,
            custom: true,
        });
    }
    Ok(types)
}

fn printer_column(col: &Value) -> Result<PrinterColumn, String> {
    let field = |key: &str| col.get(key).and_then(Value::as_str).unwrap_or_default();
    if field("name").is_empty() || field("jsonPath").is_empty() {
        return Err(format!(
            "spec.versions[].additionalPrinterColumns: name and jsonPath are required: {col}"
        ));
    }
    Ok(PrinterColumn {
        name: field("name").to_string(),
        type_: field("type").to_string(),
        format: field("format").to_string(),
        description: field("description").to_string(),
        priority: col.get("priority").and_then(Value::as_i64).unwrap_or(0),
        json_path: field("jsonPath").to_string(),
    })
}
