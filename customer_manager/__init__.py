"""VoIPbin customer-manager: a pykka actor system speaking the Go service's RabbitMQ RPC.

Importing the package changes nothing outside it: the library tricks are turned on by
``customer_manager.tricks.install()`` and the MySQL C extension is loaded by the entry points
(``customer_manager.launch``).
"""

__version__ = "0.1.0"
