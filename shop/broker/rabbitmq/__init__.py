"""The data plane of Brokers of class RabbitMQBroker, on a real RabbitMQ (docs/broker.md)."""
