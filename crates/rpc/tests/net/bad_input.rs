//! What a node answers to bytes it cannot use: statuses, never a panic.
