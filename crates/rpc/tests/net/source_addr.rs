//! Outgoing calls leave from the configured local address.
