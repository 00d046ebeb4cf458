"""The RabbitMQ names of the VoIPbin protocol: fixed by the peers, not configuration
(see docs/api.md). Changing one breaks every service that talks to this one."""

REQUEST_QUEUE = "bin-manager.customer-manager.request"
EVENT_EXCHANGE = "bin-manager.customer-manager.event"
DELAY_EXCHANGE = "bin-manager.delay"
AGENT_QUEUE = "bin-manager.agent-manager.request"
BILLING_QUEUE = "bin-manager.billing-manager.request"
WEBHOOK_QUEUE = "bin-manager.webhook-manager.request"
