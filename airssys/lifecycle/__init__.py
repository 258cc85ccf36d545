"""Component lifecycle: signing keys, signatures and the trust store, the component
store and installation (issue 13)."""
