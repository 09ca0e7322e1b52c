"""The demo: a scripted trading session, played on the embedded exchange (one process, the
memory bus) or through RabbitMQ with the real services as separate processes."""
