"""VoIPbin customer-manager: a pykka actor system speaking the Go service's RabbitMQ RPC."""

from customer_manager._cext import load_mysql_extension

__version__ = "0.1.0"

load_mysql_extension()  # before anything imports ssl: see _cext
