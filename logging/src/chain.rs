//! An error and its causes on one line, the way every binary and test of the workspace prints
//! errors (`cannot connect to /dp/kubelet.sock: transport error: entity not found`).

/// `error` and its chain of causes joined with `: `, outermost first. A cause whose text the
/// previous one already ends with (tonic and hyper wrappers repeat their cause) is said once.
pub fn error_chain(error: &(impl std::error::Error + ?Sized)) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if part != last && !last.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        last = part;
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot connect to /dp/kubelet.sock")]
    struct Outer(#[source] Repeating);

    /// Like tonic's transport error: its own text ends with its cause's.
    #[derive(Debug, thiserror::Error)]
    #[error("transport error: {0}")]
    struct Repeating(#[source] std::io::Error);

    #[test]
    fn error_chain_says_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = error_chain(&Outer(Repeating(io)));
        assert_eq!(
            text,
            "cannot connect to /dp/kubelet.sock: transport error: entity not found"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer step failed")]
    struct Step(#[source] std::io::Error);

    #[test]
    fn error_chain_joins_distinct_causes_and_takes_trait_objects() {
        let err = Step(std::io::Error::other("disk on fire"));
        assert_eq!(error_chain(&err), "outer step failed: disk on fire");
        let dynamic: &dyn std::error::Error = &err;
        assert_eq!(error_chain(dynamic), "outer step failed: disk on fire");
    }
}
