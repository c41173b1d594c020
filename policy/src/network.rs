//! What network a sandbox gets: the vocabulary the executor and the (later) egress proxy share.

use crate::egress::EgressPolicy;

/// A sandbox's network.
///
/// ```
/// use sandguard_policy::NetworkPolicy;
///
/// assert!(matches!(NetworkPolicy::default(), NetworkPolicy::None));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum NetworkPolicy {
    /// A network namespace of its own holding only the loopback interface: nothing inside can
    /// reach the host or beyond. The default.
    #[default]
    None,
    /// Egress through a host-side proxy that applies `EgressPolicy` to every name and to every
    /// address it resolves to. The executor refuses this mode until the proxy exists, rather
    /// than run with more network than asked.
    Proxied(EgressPolicy),
}
