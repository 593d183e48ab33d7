//! The central policy: Cedar policies over a published schema.
//!
//! Cedar denies by default, lets `forbid` override `permit`, and validates policies against a
//! schema, so a misspelt attribute is a start-up error instead of a rule that never matches.
//! [`SCHEMA`] is the interface policies are written against; its names do not change.
//! Facts a policy cannot look up itself (the highest security counter already signed, the
//! number of approvals) are computed by the service and passed in the context.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, ResourceConstraint, RestrictedExpression, Schema, ValidationMode,
    Validator,
};
use verifier_core::ImageVersion;

use crate::config::line_of;

/// The string claims of GitHub Actions and GitLab CI identity tokens that become optional
/// `String` attributes of a `Workload`.
pub const WORKLOAD_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "jti",
    "actor",
    "actor_id",
    "base_ref",
    "head_ref",
    "environment",
    "event_name",
    "job_workflow_ref",
    "job_workflow_sha",
    "ref",
    "ref_type",
    "ref_path",
    "ref_protected",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "repository_visibility",
    "run_id",
    "run_number",
    "run_attempt",
    "runner_environment",
    "sha",
    "workflow",
    "workflow_ref",
    "workflow_sha",
    "namespace_id",
    "namespace_path",
    "project_id",
    "project_path",
    "user_id",
    "user_login",
    "pipeline_id",
    "pipeline_source",
    "job_id",
    "environment_protected",
    "deployment_tier",
    "runner_id",
    "ci_config_ref_uri",
    "ci_config_sha",
];

/// The Cedar schema policies are validated against (Cedar schema syntax, no namespace).
pub const SCHEMA: &str = include_str!("schema.cedarschema");

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct PolicyError {
    /// The policy file.
    pub file: PathBuf,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Who is asking, as the policy sees it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Principal {
    /// A CI workload, by its verified identity token.
    Workload {
        /// The configured issuer's name.
        issuer_name: String,
        /// The token's string claims.
        claims: serde_json::Map<String, serde_json::Value>,
    },
    /// An API-token holder.
    Client {
        /// Its name.
        name: String,
        /// Its role.
        role: String,
        /// Its groups.
        groups: Vec<String>,
    },
}

impl Principal {
    /// A stable name for who this is: `client:NAME`, or `ISSUER:SUB` for a workload.
    pub fn label(&self) -> String {
        match self {
            Self::Client { name, .. } => format!("client:{name}"),
            Self::Workload { issuer_name, claims } => {
                let subject = claims.get("sub").and_then(|v| v.as_str()).unwrap_or("");
                format!("{issuer_name}:{subject}")
            }
        }
    }

    /// Whether this is an API client in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        matches!(self, Self::Client { groups, .. } if groups.iter().any(|g| g == group))
    }
}

/// The facts about one image the policy decides on.
#[derive(Debug, Clone, Copy)]
pub struct ImageFacts {
    /// The header version.
    pub version: ImageVersion,
    /// The protected security counter (0 when the image has none).
    pub security_counter: u32,
    /// The highest counter already signed with the key.
    pub highest_security_counter: u32,
    /// The payload size.
    pub image_size: u32,
    /// Distinct approvals so far.
    pub approvals: u32,
    /// The non-bootable flag.
    pub non_bootable: bool,
    /// Whether the image revokes keys (a REVOKE_KEYS TLV): a key rotation.
    pub revokes_keys: bool,
}

impl ImageFacts {
    /// The facts of `image`, with what only the service knows.
    pub fn of(
        image: &crate::tbs::ParsedImage,
        highest_security_counter: u32,
        approvals: u32,
    ) -> Self {
        Self {
            version: image.header.version,
            security_counter: image.security_counter.unwrap_or(0),
            highest_security_counter,
            image_size: image.header.img_size,
            approvals,
            non_bootable: image.header.is_non_bootable(),
            revokes_keys: !image.revocations.is_empty(),
        }
    }
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether signing is allowed.
    pub allowed: bool,
    /// The deciding policies (their `@id`, else Cedar's id), or why none decided.
    pub reason: String,
}

/// Loaded, validated policies.
#[derive(Debug)]
pub struct PolicyEngine {
    schema: Schema,
    policies: PolicySet,
}

impl PolicyEngine {
    /// Reads `file`, parses it, validates it strictly against [`SCHEMA`], and checks that every
    /// `Key::"…"` it names is one of `keys`.
    ///
    /// # Errors
    /// [`PolicyError`] naming the file and line.
    pub fn load(file: &Path, keys: &[&str]) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(file).map_err(|e| PolicyError {
            file: file.to_owned(),
            line: None,
            message: e.to_string(),
        })?;
        Self::parse(file, &text, keys)
    }

    /// As [`PolicyEngine::load`], from text; `file` names it.
    ///
    /// # Errors
    /// [`PolicyError`] naming the file and line.
    pub fn parse(file: &Path, text: &str, keys: &[&str]) -> Result<Self, PolicyError> {
        let error = |diagnostic: &dyn miette::Diagnostic, message: String| PolicyError {
            file: file.to_owned(),
            line: first_offset(diagnostic).map(|offset| line_of(text, offset)),
            message,
        };
        let (schema, _) = Schema::from_cedarschema_str(SCHEMA).map_err(|e| PolicyError {
            file: PathBuf::from("schema.cedarschema"),
            line: None,
            message: e.to_string(),
        })?;
        let policies: PolicySet =
            text.parse().map_err(|e: cedar_policy::ParseErrors| error(&e, e.to_string()))?;
        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if let Some(first) = validation.validation_errors().next() {
            return Err(error(first, format!("does not match the fwsign policy schema: {first}")));
        }
        for policy in policies.policies() {
            let mut named = policy.entity_literals();
            if let ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid) =
                policy.resource_constraint()
            {
                named.push(uid);
            }
            for uid in named.iter().filter(|uid| uid.type_name().to_string() == "Key") {
                let name = uid.id().unescaped();
                if !keys.contains(&name) {
                    let line = text.find(&format!("Key::\"{name}\"")).map(|at| line_of(text, at));
                    return Err(PolicyError {
                        file: file.to_owned(),
                        line,
                        message: format!(
                            "policy {} names Key::\"{name}\", which is not a key of the configuration (keys: {})",
                            policy_name(policy),
                            keys.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(Self { schema, policies })
    }

    /// Asks whether `principal` may sign an image with `facts` using `key`.
    pub fn decide(&self, principal: &Principal, key: &str, facts: &ImageFacts) -> Verdict {
        match self.request(principal, key, facts) {
            Ok((request, entities)) => {
                let response = Authorizer::new().is_authorized(&request, &self.policies, &entities);
                let mut deciding: Vec<String> = response
                    .diagnostics()
                    .reason()
                    .filter_map(|id| self.policies.policy(id).map(policy_name))
                    .collect();
                deciding.sort();
                let errors: Vec<String> =
                    response.diagnostics().errors().map(ToString::to_string).collect();
                let allowed = response.decision() == Decision::Allow;
                let reason = match (allowed, deciding.is_empty(), errors.is_empty()) {
                    (_, false, _) => deciding.join(", "),
                    (false, true, true) => "no policy permits this request".into(),
                    (_, true, _) => format!("policy evaluation failed: {}", errors.join("; ")),
                };
                Verdict { allowed, reason }
            }
            Err(message) => Verdict { allowed: false, reason: message },
        }
    }

    fn request(
        &self,
        principal: &Principal,
        key: &str,
        facts: &ImageFacts,
    ) -> Result<(Request, Entities), String> {
        let (uid, entities) = principal_entities(principal)?;
        let entities = Entities::from_entities(entities, Some(&self.schema))
            .map_err(|e| format!("identity does not fit the policy schema: {e}"))?;
        let action = uid_of("Action", "sign")?;
        let resource = uid_of("Key", key)?;
        let context = Context::from_pairs(context_pairs(facts))
            .map_err(|e| format!("policy context: {e}"))?;
        let request = Request::new(uid, action, resource, context, Some(&self.schema))
            .map_err(|e| format!("request does not fit the policy schema: {e}"))?;
        Ok((request, entities))
    }
}

/// A policy's name: its `@id` annotation, else Cedar's id.
fn policy_name(policy: &cedar_policy::Policy) -> String {
    policy.annotation("id").map_or_else(|| policy.id().to_string(), ToOwned::to_owned)
}

fn first_offset(diagnostic: &dyn miette::Diagnostic) -> Option<usize> {
    let labelled = diagnostic.labels().and_then(|mut labels| labels.next());
    labelled.map(|label| label.offset()).or_else(|| {
        diagnostic.related().and_then(|mut related| related.next()).and_then(first_offset)
    })
}

fn uid_of(type_name: &str, id: &str) -> Result<EntityUid, String> {
    let type_name: EntityTypeName =
        type_name.parse().map_err(|e| format!("entity type {type_name}: {e}"))?;
    Ok(EntityUid::from_type_name_and_id(type_name, EntityId::new(id)))
}

fn principal_entities(principal: &Principal) -> Result<(EntityUid, Vec<Entity>), String> {
    let string = |value: &str| RestrictedExpression::new_string(value.to_owned());
    match principal {
        Principal::Workload { issuer_name, claims } => {
            let mut attributes = HashMap::from([("issuer_name".to_owned(), string(issuer_name))]);
            for claim in WORKLOAD_CLAIMS {
                if let Some(serde_json::Value::String(value)) = claims.get(*claim) {
                    attributes.insert((*claim).to_owned(), string(value));
                }
            }
            let subject = claims.get("sub").and_then(|v| v.as_str()).unwrap_or("");
            let uid = uid_of("Workload", &format!("{issuer_name}:{subject}"))?;
            let entity = Entity::new(uid.clone(), attributes, HashSet::new())
                .map_err(|e| format!("workload identity: {e}"))?;
            Ok((uid, vec![entity]))
        }
        Principal::Client { name, role, groups } => {
            let attributes = HashMap::from([
                ("name".to_owned(), string(name)),
                ("role".to_owned(), string(role)),
            ]);
            let group_uids =
                groups.iter().map(|group| uid_of("Group", group)).collect::<Result<Vec<_>, _>>()?;
            let uid = uid_of("Client", name)?;
            let mut entities: Vec<Entity> = group_uids
                .iter()
                .map(|group| Entity::new_no_attrs(group.clone(), HashSet::new()))
                .collect();
            let client = Entity::new(uid.clone(), attributes, group_uids.into_iter().collect())
                .map_err(|e| format!("client identity: {e}"))?;
            entities.push(client);
            Ok((uid, entities))
        }
    }
}

fn context_pairs(facts: &ImageFacts) -> Vec<(String, RestrictedExpression)> {
    let long = |value: u32| RestrictedExpression::new_long(i64::from(value));
    let version = facts.version;
    vec![
        ("version".into(), RestrictedExpression::new_string(version.to_string())),
        ("version_major".into(), long(version.major.into())),
        ("version_minor".into(), long(version.minor.into())),
        ("version_revision".into(), long(version.revision.into())),
        ("version_build".into(), long(version.build_num)),
        ("security_counter".into(), long(facts.security_counter)),
        ("highest_security_counter".into(), long(facts.highest_security_counter)),
        ("image_size".into(), long(facts.image_size)),
        ("approvals".into(), long(facts.approvals)),
        ("non_bootable".into(), RestrictedExpression::new_bool(facts.non_bootable)),
        ("revokes_keys".into(), RestrictedExpression::new_bool(facts.revokes_keys)),
    ]
}
