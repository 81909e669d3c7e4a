"""The real local stack: Apache Kafka (KRaft, jars from Maven Central) and PostgreSQL
(Debian's server binaries), each in a throwaway folder, for development and tests.

``python -m yixian.localstack up|down|status|clean`` (or ``make up`` ...) drives it;
:mod:`yixian.localstack.pytest_plugin` brings it up for tests that need it.
"""

from .stack import KafkaServer, LocalStack, PostgresServer, StackConfig, StackError

__all__ = ["KafkaServer", "LocalStack", "PostgresServer", "StackConfig", "StackError"]
