"""Webhooks: subscriptions, their signed deliveries (jobs of kind `webhook`), the delivery log.

types          the notification types and the job kind
signing        Standard Webhooks signatures and secrets
store          the subscriptions table and the delivery log (SQL)
subscriptions  what makes a subscription valid; creating and changing one
delivery       a worker's attempt at a delivery, and what it records
views          what the API answers
"""

from signoff.engine.webhooks import delivery, signing, store, subscriptions, types, views

__all__ = ["delivery", "signing", "store", "subscriptions", "types", "views"]
