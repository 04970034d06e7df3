//! The double's side of the `/__control/` API shared with every double.

use serde_json::{Map, Value, json};

use super::AUTH0_OPS;
use super::state::{App, StoredUser, Tenant};
use crate::doubles::faults::Fault;
use crate::doubles::server::Control;

impl Control for App {
    fn snapshot(&self) -> Value {
        let tenant = self.tenant();
        let calls: Map<String, Value> = AUTH0_OPS
            .iter()
            .map(|op| (op.to_string(), tenant.calls_to(op).into()))
            .collect();
        json!({
            "users": tenant.profiles(),
            "access": tenant.access_by_user(),
            "token_requests": tenant.calls_to("token"),
            "calls": calls,
            "faults": tenant.faults.pending(),
        })
    }

    /// Keeps issued tokens so a client's cached token survives a reset.
    fn reset(&self) {
        let mut tenant = self.tenant();
        let tokens = std::mem::take(&mut tenant.tokens);
        *tenant = Tenant {
            tokens,
            ..Tenant::new(tenant.initial.clone(), &tenant.base_url)
        };
    }

    fn inject(&self, fault: Fault) {
        self.tenant().faults.push(fault);
    }

    fn clear_faults(&self) {
        self.tenant().faults.clear();
    }
}

impl Tenant {
    /// `user_id` → whether it is blocked and how many live refresh tokens and open sessions
    /// it has, for every user.
    fn access_by_user(&self) -> Map<String, Value> {
        let of = |user: &StoredUser| {
            let id = user.id();
            let state = json!({
                "blocked": user.profile["blocked"] == json!(true),
                "refresh_tokens": self.access.refresh_tokens_of(id),
                "sessions": self.access.sessions_of(id),
            });
            (id.to_string(), state)
        };
        self.users.iter().map(of).collect()
    }
}
