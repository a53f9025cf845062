"""Re-encrypt residents' ID and phone numbers and recompute their blind indexes under the
current keys (the middle step of a key rotation, docs/operations.md "Key rotation").

    python -m services.population.rekey [--batch-size 500]

Run with the same settings as the population service (current keys and the previous ones
in PII_*_KEYS_PREVIOUS). Idempotent and resumable: it looks only for residents not yet
under the current keys (`pii_keys`), in batches, and each rewrite is conditional on the
ciphertexts it read, so a concurrent change by the service wins and is picked up on the
next pass. It exits 0 when no resident is left under a previous key.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from pymongo.collection import Collection

from gridwork_common.config import settings_or_exit
from gridwork_common.mongo import new_client
from services.population import store
from services.population.import_lease import QUEUED, RUNNING
from services.population.protection import PersonalDataCipher

_PROTECTED = (("id_cipher", "id_index", "id_number"), ("phone_cipher", "phone_index", "phone"))


class ResidentRekeying:
    """Rewrites residents' protected fields from previous keys to the current ones."""

    def __init__(self, residents: Collection, cipher: PersonalDataCipher):
        self.residents = residents
        self.cipher = cipher

    def remaining(self) -> int:
        return self.residents.count_documents(self._stale())

    def run(self, batch_size: int = 500) -> dict:
        counts = {"rewritten": 0, "skipped_concurrent": 0}
        last_id = ""
        while True:
            batch = list(
                self.residents.find(
                    {**self._stale(), "_id": {"$gt": last_id}},
                    {"id_cipher": 1, "phone_cipher": 1},
                    sort=[("_id", 1)],
                    limit=batch_size,
                )
            )
            if not batch:
                return counts
            for doc in batch:
                rewritten = self._rewrite(doc)
                counts["rewritten" if rewritten else "skipped_concurrent"] += 1
            last_id = batch[-1]["_id"]

    def _stale(self) -> dict:
        return {"pii_keys": {"$ne": self.cipher.key_ids}}

    def _rewrite(self, doc: Mapping) -> bool:
        # Conditional on the ciphertexts read: a concurrent update re-encrypted them already.
        unchanged = {"_id": doc["_id"]}
        update = {"pii_keys": self.cipher.key_ids}
        for cipher_field, index_field, name in _PROTECTED:
            token = doc.get(cipher_field)
            unchanged[cipher_field] = token if token is not None else {"$exists": False}
            if token is None:
                continue
            value = self.cipher.decrypt(token, name)
            update[cipher_field] = self.cipher.encrypt(value, name)
            update[index_field] = self.cipher.blind_index(value, name)
        return self.residents.update_one(unchanged, {"$set": update}).modified_count == 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.population.rekey")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    settings = settings_or_exit()
    database = new_client(settings, "population-rekey")[settings.database_name("population")]
    rekeying = ResidentRekeying(
        database[store.RESIDENTS], PersonalDataCipher.from_settings(settings)
    )
    counts = rekeying.run(args.batch_size)
    left = rekeying.remaining()
    unfinished_imports = database[store.IMPORT_JOBS].count_documents(
        {"status": {"$in": [QUEUED, RUNNING]}}
    )
    print(
        f"rewritten={counts['rewritten']} changed_meanwhile={counts['skipped_concurrent']}"
        f" remaining={left} unfinished_imports={unfinished_imports}",
        flush=True,
    )
    return 0 if left == 0 and unfinished_imports == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
