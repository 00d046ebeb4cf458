"""VoIPbin customer-manager: a pykka actor system speaking the Go service's RabbitMQ RPC."""

__version__ = "0.1.0"
