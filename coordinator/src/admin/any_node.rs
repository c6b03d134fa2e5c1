//! Asking whichever node can answer, as restatectl does, and saying which one did.

use std::future::Future;

use super::{AdminClient, AdminError};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Answered<T> {
    pub value: T,
    /// The address of the node that answered.
    pub answered_by: String,
}

/// Tries `call` on each client in order and returns the first answer. Every node that failed is
/// named in the error when none answered.
pub async fn first_answer<T, F, Fut>(
    clients: &[AdminClient],
    method: &'static str,
    call: F,
) -> Result<Answered<T>, AdminError>
where
    F: Fn(AdminClient) -> Fut,
    Fut: Future<Output = Result<T, AdminError>>,
{
    let mut errors = Vec::new();
    for client in clients {
        match call(client.clone()).await {
            Ok(value) => {
                return Ok(Answered {
                    value,
                    answered_by: client.address().to_owned(),
                });
            }
            Err(err) => {
                tracing::debug!(address = client.address(), method, error = %err, "trying the next node");
                errors.push(err);
            }
        }
    }
    Err(AdminError::NoNodeAnswered { method, errors })
}
