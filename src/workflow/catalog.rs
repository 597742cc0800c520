//! The workflows a server offers, loaded from the workflows folder at start,
//! and the definitions running reviews have pinned (by content digest).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::definition::Workflow;
use super::file::{self, Diagnostic};

/// A workflow with the exact text it was read from.
#[derive(Debug, Clone)]
pub struct LoadedWorkflow {
    pub workflow: Workflow,
    /// SHA-256 (hex) of `source`.
    pub digest: String,
    pub source: String,
}

impl LoadedWorkflow {
    /// Parses `source`; `file` names it in messages.
    pub fn parse(
        file: &str,
        source: &str,
        expected_id: Option<&str>,
    ) -> Result<Self, Vec<Diagnostic>> {
        let workflow = file::parse(file, source, expected_id)?;
        Ok(Self {
            workflow,
            digest: digest(source),
            source: source.to_owned(),
        })
    }
}

pub fn digest(source: &str) -> String {
    hex::encode(Sha256::digest(source.as_bytes()))
}

#[derive(Debug, Default)]
pub struct Catalog {
    current: BTreeMap<String, Arc<LoadedWorkflow>>,
    pinned: Mutex<HashMap<String, Arc<LoadedWorkflow>>>,
}

impl Catalog {
    /// Loads every `*.toml` in `dir`; a missing folder gives an empty catalogue.
    pub fn load_dir(dir: &Path) -> Result<Self, Vec<Diagnostic>> {
        let mut catalog = Catalog::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(catalog),
            Err(e) => return Err(vec![io_problem(dir, &e)]),
        };
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut problems = Vec::new();
        for path in paths {
            let name = path.display().to_string();
            let source = match std::fs::read_to_string(&path) {
                Ok(source) => source,
                Err(e) => {
                    problems.push(io_problem(&path, &e));
                    continue;
                }
            };
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            match LoadedWorkflow::parse(&name, &source, stem.as_deref()) {
                Ok(loaded) => {
                    catalog
                        .current
                        .insert(loaded.workflow.id.clone(), Arc::new(loaded));
                }
                Err(mut found) => problems.append(&mut found),
            }
        }
        if problems.is_empty() {
            Ok(catalog)
        } else {
            Err(problems)
        }
    }

    pub fn from_workflows(workflows: impl IntoIterator<Item = LoadedWorkflow>) -> Self {
        Catalog {
            current: workflows
                .into_iter()
                .map(|w| (w.workflow.id.clone(), Arc::new(w)))
                .collect(),
            pinned: Mutex::default(),
        }
    }

    /// The current version of a workflow, as new reviews start it.
    pub fn get(&self, id: &str) -> Option<Arc<LoadedWorkflow>> {
        self.current.get(id).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<LoadedWorkflow>> {
        self.current.values()
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// The definition a review pinned, from the current files when they still
    /// match, else parsed from the stored `source`.
    pub fn pinned(
        &self,
        digest: &str,
        source: impl FnOnce() -> Option<String>,
    ) -> Option<Arc<LoadedWorkflow>> {
        if let Some(current) = self.current.values().find(|w| w.digest == digest) {
            return Some(current.clone());
        }
        let mut cache = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = cache.get(digest) {
            return Some(found.clone());
        }
        let source = source()?;
        let loaded = Arc::new(
            LoadedWorkflow::parse(&format!("pinned workflow {digest}"), &source, None).ok()?,
        );
        cache.insert(digest.to_owned(), loaded.clone());
        Some(loaded)
    }
}

fn io_problem(path: &Path, error: &std::io::Error) -> Diagnostic {
    Diagnostic {
        file: path.display().to_string(),
        line: 1,
        col: 1,
        message: format!("cannot read: {error}"),
    }
}
