"""Webhooks: subscriptions, their signed deliveries (jobs of kind `webhook`), the delivery log."""
