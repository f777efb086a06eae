"""The lifecycle core: the one place a payment's or refund's state changes.

- locks.py: the lock order (merchant, batch, payments by primary key, refund);
- guards.py: the checks every money-moving entry point passes (suspended merchants);
- attempts.py: GatewayAttempt creation (the one key format) and the gateway-call helper
  that refuses to run inside a transaction;
- outcomes.py: the one table from gateway outcomes to transitions, applied to one
  payment or set-based to many; superseded attempts; late successes;
- transitions.py: a transition on one locked payment, or set-based on many;
- events.py: Events for one payment or many, written in the changing transaction.

Payments, refunds, batches, callbacks and reconciliation are use cases over it.
"""
