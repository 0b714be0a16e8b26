//! The IAM policy language as S3 bucket policies and user (identity) policies use it: parsing and validation
//! with AWS's MalformedPolicy messages, evaluation of one policy for one request, and AWS's definition of a
//! "public" policy (GetBucketPolicyStatus, Block Public Access).
//!
//! Principals: Strata is a single account, so the account id inside a principal ARN is not checked.
//! `arn:aws:iam::<account>:root` (or a bare 12-digit account id) names the root user;
//! `arn:aws:iam::<account>:user/<name>` names the user whose display name or access key is `<name>`;
//! `{"CanonicalUser": "<access key>"}` names a user by canonical id (Strata's canonical ids are access keys);
//! `"*"` and `{"AWS": "*"}` name everyone, anonymous callers included.

use serde_json::{Map, Value};

use super::RequestEnv;
use super::actions::{action_matches, glob_match, is_valid_action_pattern};
use super::condition::{self, Condition};
use crate::auth::Identity;
use crate::error::ApiError;

/// The largest bucket policy S3 accepts.
pub const MAX_BUCKET_POLICY_BYTES: usize = 20 * 1024;

/// What a policy is attached to, which decides what it may say.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// A bucket policy: needs Principal, and its resources must lie in this bucket.
    Bucket(&'a str),
    /// A user's identity policy: no Principal (the user is the principal).
    Identity,
}

/// The outcome of evaluating one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A matching statement denies.
    Deny,
    /// A matching statement allows and none denies.
    Allow,
    /// No statement matches.
    Implicit,
}

/// A parsed, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    /// None for identity policies (the statement applies to the policy's user).
    principals: Option<Vec<Principal>>,
    /// NotPrincipal: the statement applies to everyone except `principals`.
    not_principal: bool,
    actions: Vec<String>,
    not_action: bool,
    resources: Vec<String>,
    not_resource: bool,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    Everyone,
    Root,
    /// A user by name (display name or access key).
    User(String),
}

fn malformed(msg: &str) -> ApiError {
    ApiError::MalformedPolicy(msg.to_owned())
}

const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

impl Policy {
    /// Parses and validates a policy document.
    pub fn parse(doc: &[u8], scope: Scope<'_>) -> Result<Self, ApiError> {
        let first = doc.iter().find(|b| !b.is_ascii_whitespace());
        let value: Value = match (first, serde_json::from_slice(doc)) {
            (Some(b'{'), Ok(v)) => v,
            _ => {
                return Err(malformed(
                    "Policies must be valid JSON and the first byte must be '{'",
                ));
            }
        };
        let top = value
            .as_object()
            .ok_or_else(|| malformed("Invalid policy syntax."))?;
        for field in top.keys() {
            if !matches!(field.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(&format!("Unknown field {field}")));
            }
        }
        match top.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(_) => {
                return Err(malformed("The policy must contain a valid version string"));
            }
        }
        let statements = match top.get("Statement") {
            None => return Err(malformed("Missing required field Statement")),
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => return Err(malformed("Invalid policy syntax.")),
        };
        if statements.is_empty() {
            return Err(malformed("Could not parse the policy: Statement is empty!"));
        }
        let mut sids = Vec::new();
        let mut parsed = Vec::with_capacity(statements.len());
        for s in statements {
            let obj = s
                .as_object()
                .ok_or_else(|| malformed("Invalid policy syntax."))?;
            if let Some(sid) = obj.get("Sid") {
                let sid = sid
                    .as_str()
                    .ok_or_else(|| malformed("Invalid policy syntax."))?;
                if sids.contains(&sid) {
                    return Err(malformed(
                        "Statement IDs (SID) in a single policy must be unique",
                    ));
                }
                sids.push(sid);
            }
            parsed.push(Statement::parse(obj, scope)?);
        }
        Ok(Self { statements: parsed })
    }

    /// Evaluates the policy for `caller` (None: anonymous) doing `action` on `resource` (an ARN):
    /// an explicit Deny wins over any Allow.
    pub fn evaluate(
        &self,
        caller: Option<&Identity>,
        action: &str,
        resource: &str,
        env: &RequestEnv,
    ) -> Decision {
        let mut decision = Decision::Implicit;
        for s in &self.statements {
            if s.applies(caller, action, resource, env) {
                if !s.allow {
                    return Decision::Deny;
                }
                decision = Decision::Allow;
            }
        }
        decision
    }

    /// Whether the policy is public by AWS's definition: some Allow statement grants to everyone (Principal
    /// `*`, or any NotPrincipal) without a condition pinning it to fixed values (source IP ranges narrower
    /// than /8, or exact account, ARN, VPC or user ids).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            let broad = match &s.principals {
                Some(p) => s.not_principal || p.contains(&Principal::Everyone),
                None => false,
            };
            s.allow && broad && !s.conditions.iter().any(pins_to_fixed_values)
        })
    }
}

/// Keys whose fixed values make a grant to `*` non-public.
const PINNING_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourcearn",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:userid",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
];

fn pins_to_fixed_values(c: &Condition) -> bool {
    if !c.pins() || !PINNING_KEYS.contains(&c.key()) {
        return false;
    }
    if c.key() == "aws:sourceip" {
        return c.nets().iter().all(|n| match n {
            ipnet::IpNet::V4(n) => n.prefix_len() >= 8,
            ipnet::IpNet::V6(n) => n.prefix_len() >= 32,
        });
    }
    c.values()
        .iter()
        .all(|v| !v.contains('*') && !v.contains('?'))
}

/// A JSON string or non-empty array of strings.
fn string_list(v: &Value, err: &str) -> Result<Vec<String>, ApiError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(|| malformed(err)))
            .collect(),
        _ => Err(malformed(err)),
    }
}

/// Exactly one of `positive` / `negative` in `obj`: its values and whether it was the negative one.
fn one_of(
    obj: &Map<String, Value>,
    positive: &str,
    negative: &str,
    invalid: &str,
) -> Result<Option<(Vec<String>, bool)>, ApiError> {
    match (obj.get(positive), obj.get(negative)) {
        (Some(_), Some(_)) => Err(malformed("Invalid policy syntax.")),
        (Some(v), None) => Ok(Some((string_list(v, invalid)?, false))),
        (None, Some(v)) => Ok(Some((string_list(v, invalid)?, true))),
        (None, None) => Ok(None),
    }
}

impl Statement {
    fn parse(obj: &Map<String, Value>, scope: Scope<'_>) -> Result<Self, ApiError> {
        if let Some(field) = obj.keys().find(|k| !STATEMENT_FIELDS.contains(&k.as_str())) {
            return Err(malformed(&format!("Unknown field {field}")));
        }
        let allow = match obj.get("Effect") {
            None => return Err(malformed("Missing required field Effect")),
            Some(Value::String(e)) if e == "Allow" => true,
            Some(Value::String(e)) if e == "Deny" => false,
            Some(other) => {
                let shown = other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_owned);
                return Err(malformed(&format!("Invalid effect: {shown}")));
            }
        };
        let (principals, not_principal) = parse_principals(obj, scope)?;
        let (actions, not_action) =
            one_of(obj, "Action", "NotAction", "Policy has invalid action")?
                .ok_or_else(|| malformed("Missing required field Action"))?;
        if !actions.iter().all(|a| is_valid_action_pattern(a)) {
            return Err(malformed("Policy has invalid action"));
        }
        let (resources, not_resource) = one_of(
            obj,
            "Resource",
            "NotResource",
            "Policy has invalid resource",
        )?
        .ok_or_else(|| malformed("Missing required field Resource"))?;
        if !resources.iter().all(|r| valid_resource(r, scope)) {
            return Err(malformed("Policy has invalid resource"));
        }
        let conditions = match obj.get("Condition") {
            None => Vec::new(),
            Some(block) => condition::parse_block(block).map_err(malformed)?,
        };
        Ok(Self {
            allow,
            principals,
            not_principal,
            actions,
            not_action,
            resources,
            not_resource,
            conditions,
        })
    }

    fn applies(
        &self,
        caller: Option<&Identity>,
        action: &str,
        resource: &str,
        env: &RequestEnv,
    ) -> bool {
        let principal_ok = match &self.principals {
            None => true,
            Some(list) => list.iter().any(|p| p.matches(caller)) != self.not_principal,
        };
        let action_ok = self.actions.iter().any(|p| action_matches(p, action)) != self.not_action;
        let resource_ok =
            self.resources.iter().any(|p| glob_match(p, resource)) != self.not_resource;
        principal_ok
            && action_ok
            && resource_ok
            && self.conditions.iter().all(|c| c.holds(caller, env))
    }
}

fn parse_principals(
    obj: &Map<String, Value>,
    scope: Scope<'_>,
) -> Result<(Option<Vec<Principal>>, bool), ApiError> {
    let (value, not) = match (obj.get("Principal"), obj.get("NotPrincipal")) {
        (Some(_), Some(_)) => return Err(malformed("Invalid policy syntax.")),
        (Some(v), None) => (v, false),
        (None, Some(v)) => (v, true),
        (None, None) => {
            return match scope {
                Scope::Bucket(_) => Err(malformed("Missing required field Principal")),
                Scope::Identity => Ok((None, false)),
            };
        }
    };
    if matches!(scope, Scope::Identity) {
        return Err(malformed("Policy document should not specify a principal."));
    }
    let invalid = || malformed("Invalid principal in policy");
    let mut out = Vec::new();
    match value {
        Value::String(s) if s == "*" => out.push(Principal::Everyone),
        Value::Object(map) if !map.is_empty() => {
            for (kind, ids) in map {
                let ids = string_list(ids, "Invalid principal in policy")?;
                for id in ids {
                    let p = match kind.as_str() {
                        "AWS" => aws_principal(&id).ok_or_else(invalid)?,
                        "CanonicalUser" if !id.is_empty() => Principal::User(id),
                        _ => return Err(invalid()),
                    };
                    out.push(p);
                }
            }
        }
        _ => return Err(invalid()),
    }
    Ok((Some(out), not))
}

fn aws_principal(id: &str) -> Option<Principal> {
    if id == "*" {
        return Some(Principal::Everyone);
    }
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Principal::Root);
    }
    let rest = id.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    if account.is_empty() || account.contains('*') {
        return None;
    }
    if resource == "root" {
        return Some(Principal::Root);
    }
    let name = resource.strip_prefix("user/")?.rsplit('/').next()?;
    (!name.is_empty() && !name.contains('*')).then(|| Principal::User(name.to_owned()))
}

impl Principal {
    fn matches(&self, caller: Option<&Identity>) -> bool {
        match (self, caller) {
            (Principal::Everyone, _) => true,
            (_, None) => false,
            (Principal::Root, Some(c)) => c.is_root,
            (Principal::User(name), Some(c)) => *name == c.display_name || *name == c.access_key,
        }
    }
}

fn valid_resource(r: &str, scope: Scope<'_>) -> bool {
    if r == "*" {
        return true;
    }
    let Some(path) = r.strip_prefix("arn:aws:s3:::") else {
        return false;
    };
    match scope {
        Scope::Identity => !path.is_empty(),
        Scope::Bucket(bucket) => {
            let bucket_part = path.split('/').next().unwrap_or_default();
            !bucket_part.is_empty() && glob_match(bucket_part, bucket)
        }
    }
}

/// The ARN a request acts on: the bucket, or an object in it.
pub fn resource_arn(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
        None => format!("arn:aws:s3:::{bucket}"),
    }
}

#[cfg(test)]
mod tests;
