//! The web UI's TypeScript, checked: it type-checks (`tsc --noEmit`, from the copy the
//! build script installed under `$OUT_DIR/web`), and its hand-written API types in
//! `web/src/api.ts` say what `openapi.json` says the server sends: every field the UI
//! declares is one the server has, a field the UI relies on is always sent, a field the
//! server may send as `null` is nullable in the UI, and the UI declares every field the
//! server always sends.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// One field of a TypeScript interface: optional (`?`) or not, and its type as written.
#[derive(Debug)]
struct Field {
    optional: bool,
    ty: String,
}

/// The fields of `export interface NAME { ... }` blocks: a small reader for the plain
/// declarations `api.ts` holds (one field per line, comments skipped; a field whose
/// type is an inline object keeps the object's text, read again by [`fields_of`]).
fn interfaces(source: &str) -> BTreeMap<String, BTreeMap<String, Field>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, BTreeMap<String, Field>)> = None;
    for line in source.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("export interface ") {
            let name = rest.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("").to_owned();
            current = Some((name, BTreeMap::new()));
            continue;
        }
        let Some((name, fields)) = current.as_mut() else { continue };
        if line == "}" {
            out.insert(name.clone(), std::mem::take(fields));
            current = None;
            continue;
        }
        if line.starts_with("/*") || line.starts_with('*') || line.starts_with("//") {
            continue;
        }
        fields.extend(fields_of(line));
    }
    out
}

/// The `name?: type;` declarations on one line (or inside one inline object).
fn fields_of(text: &str) -> Vec<(String, Field)> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let bytes: Vec<char> = text.chars().collect();
    for (i, c) in bytes.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ';' if depth == 0 => {
                let decl: String = bytes[start..i].iter().collect();
                if let Some((name, ty)) = decl.split_once(':') {
                    let name = name.trim();
                    let optional = name.ends_with('?');
                    let name = name.trim_end_matches('?').to_owned();
                    out.push((name, Field { optional, ty: ty.trim().to_owned() }));
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    out
}

/// Whether a JSON schema allows `null`.
fn nullable(schema: &Value) -> bool {
    match &schema["type"] {
        Value::String(t) => t == "null",
        Value::Array(ts) => ts.iter().any(|t| t == "null"),
        _ => ["oneOf", "anyOf"]
            .iter()
            .any(|k| schema[k].as_array().is_some_and(|alts| alts.iter().any(nullable))),
    }
}

/// Checks one UI type against one schema; returns what disagrees.
fn compare(ui: &str, fields: &BTreeMap<String, Field>, schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let properties = schema["properties"].as_object().cloned().unwrap_or_default();
    let required: Vec<&str> =
        schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    for (name, field) in fields {
        let Some(property) = properties.get(name) else {
            problems.push(format!("{ui}.{name}: the server sends no such field"));
            continue;
        };
        if !field.optional && !required.contains(&name.as_str()) {
            problems
                .push(format!("{ui}.{name}: the server does not always send it; make it optional"));
        }
        let ui_null = field.ty.split('|').any(|t| t.trim() == "null");
        if nullable(property) && !ui_null {
            problems.push(format!(
                "{ui}.{name}: the server may send null; the UI's type {} has no null",
                field.ty
            ));
        }
        // An inline object: its fields against the schema's non-null alternative.
        if let (Some(open), Some(close)) = (field.ty.find('{'), field.ty.rfind('}')) {
            let inner: BTreeMap<String, Field> =
                fields_of(&format!("{};", &field.ty[open + 1..close].trim().trim_end_matches(';')))
                    .into_iter()
                    .collect();
            let object = property["oneOf"]
                .as_array()
                .and_then(|alts| alts.iter().find(|a| a["type"] == "object"))
                .unwrap_or(property);
            problems.extend(compare(&format!("{ui}.{name}"), &inner, object));
        }
    }
    for name in required {
        if !fields.contains_key(name) {
            problems
                .push(format!("{ui}.{name}: the server always sends it; the UI's type lacks it"));
        }
    }
    problems
}

#[test]
fn the_uis_api_types_say_what_openapi_json_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let api = std::fs::read_to_string(root.join("../web/src/api.ts")).expect("read api.ts");
    let doc: Value = serde_json::from_str(include_str!("../../src/openapi.json")).expect("JSON");
    let schemas = &doc["components"]["schemas"];
    let ui = interfaces(&api);
    let pairs: [(&str, &Value); 7] = [
        ("Project", &schemas["Project"]),
        ("RunRow", &schemas["Run"]),
        ("Summary", &schemas["RunSummary"]),
        ("LastPoint", &schemas["RunSummary"]["properties"]["last"]["additionalProperties"]),
        ("Series", &schemas["Series"]),
        ("TextPoint", &schemas["TextPoint"]),
        ("Artifact", &schemas["Artifact"]),
    ];
    let mut problems = Vec::new();
    for (name, schema) in pairs {
        let Some(fields) = ui.get(name) else {
            problems.push(format!("api.ts has no interface {name}"));
            continue;
        };
        problems.extend(compare(name, fields, schema));
    }
    // A comparison entry is a run's columns or its error.
    if let Some(fields) = ui.get("CompareEntry") {
        let mut own = schemas["CompareRunError"].clone();
        own["required"] = serde_json::json!(["project", "run_id"]);
        problems.extend(compare("CompareEntry", fields, &own));
    }
    assert!(
        problems.is_empty(),
        "web/src/api.ts disagrees with openapi.json:\n{}",
        problems.join("\n")
    );

    // The reader itself: it finds what is there, and the check finds drift.
    let drifted = interfaces(
        "export interface S {\n  a: string;\n  /** doc */\n  b?: number | null;\n  c: { x?: string; gone?: string } | null;\n}\n",
    );
    let schema = serde_json::json!({"required": ["a", "d"], "properties": {
        "a": {"type": ["string", "null"]}, "b": {"type": "number"},
        "c": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {"x": {"type": "string"}}}]},
        "d": {"type": "string"}}});
    let found = compare("S", &drifted["S"], &schema);
    assert_eq!(
        found,
        [
            "S.a: the server may send null; the UI's type string has no null",
            "S.c: the server does not always send it; make it optional",
            "S.c.gone: the server sends no such field",
            "S.d: the server always sends it; the UI's type lacks it",
        ],
        "{found:?}"
    );
}

#[test]
fn the_uis_typescript_type_checks() {
    let web = Path::new(env!("OUT_DIR")).join("web");
    let tsc = web.join("node_modules/typescript/bin/tsc");
    if !tsc.exists() {
        if std::env::var_os("GOODSEED_SKIP_BROWSER").is_some() {
            return;
        }
        panic!(
            "no TypeScript at {} (the build installs the UI's packages when npm can reach \
             its registry; GOODSEED_SKIP_BROWSER=1 skips the UI's checks)",
            tsc.display()
        );
    }
    let out = Command::new("node")
        .arg(&tsc)
        .args(["--noEmit", "-p"])
        .arg(&web)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "tsc --noEmit found errors in the web UI:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
