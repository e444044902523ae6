"""Where the Kafka consumer and publisher find the broker and their topics.

Apart from `consumers.kafka` so that the `ledger` command can show these defaults in its
help without loading the Kafka client, which every other command would then load too.
"""

import os
from dataclasses import dataclass, field

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = field(
        default_factory=lambda: os.environ.get("LEDGER_KAFKA", DEFAULT_BOOTSTRAP)
    )
    topic: str = "ledger.events"
    catalog_topic: str = "ledger.catalog"
    dead_letter_topic: str = "ledger.events.deadletter"
    group: str = "ledger"
