"""python -m settlement_worker — settle trades into the ledger and pay them (also
`rex settlement`).

Store: SQLite under REX_DATA_DIR by default, PostgreSQL if REX_DATABASE_URL is set.
The payer runs in the process (behind the bus lock "payer": one paying process among the
workers), talking to the configured banks over AMQP (`python -m settlement_worker.payments.bank_sim
--bank <id>` per bank, or a real bank's gateway); `--no-payer` books without paying.

It also answers settlement requests (docs/members/protocol.md): members change their own receipt
limits and payment method, endorse and discount the bills they hold and list their bills,
open disputes, report, confirm, decline and cancel offline trades; operators -- the operator
accounts of operators.toml -- do the same for any member (role settlement_ops), and the
operator actions (disputes, payments, bill maturity and dishonour; the audit search). Each
member's requests come from a queue of its own, the operators' from a shared one
(settlement_worker/service.py).

Exit status 2: the configuration is wrong; 5: the metrics port asked for is taken; 8: the
store cannot be opened (the log says why; docs/operators/operations.md). A broker that is down is
waited for: the bus reconnects every second.
"""

from __future__ import annotations

import argparse
import logging
import signal

from rex import logs, metrics, topology
from rex.bus.amqp import AmqpBus
from rex.cli_errors import Reaching, classify
from rex.config import ConfigError, ProcessConfig
from rex.environment import REX_BUS_CONFIRM_TIMEOUT, REX_DATABASE_URL, REX_REPLICATION
from rex.private_files import keep_created_files_private
from rex.service_users import Service, broker_url_of
from settlement_worker.audit.requests import audit_request_kinds
from settlement_worker.bills.holidays import load_calendar
from settlement_worker.bills.operations import BillDesk
from settlement_worker.bills.operator_requests import bill_operator_kinds
from settlement_worker.bills.requests import bill_request_kinds
from settlement_worker.configuration import load_settlement
from settlement_worker.disputes.requests import dispute_request_kinds
from settlement_worker.member_settings.requests import settings_request_kinds
from settlement_worker.offline.requests import offline_request_kinds
from settlement_worker.payments.banks.amqp import AmqpBankClient
from settlement_worker.payments.requests import payment_request_kinds
from settlement_worker.requests.desk import RequestDesk, RequestKind
from settlement_worker.service import SettlementService
from settlement_worker.store.opening import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m settlement_worker", description=__doc__)
    metrics.add_options(parser, metrics.SETTLEMENT_EXPORTER)
    parser.add_argument(
        "--no-payer",
        action="store_true",
        help="book trades and create their payments, but do not send them to the banks",
    )
    args = parser.parse_args(argv)
    try:
        keep_created_files_private()
        logs.setup("settlement")
        process_config = ProcessConfig.from_env()
        broker_url = broker_url_of(Service.SETTLEMENT, process_config.broker_url)
        products = process_config.products()
        members = process_config.members()
        config = load_settlement(process_config.settlement_file, products, members)
        accounts = process_config.operators()  # operator accounts with roles (operators.toml)
        bill_desk = BillDesk(config, load_calendar(process_config.holidays_file))
        database_url = REX_DATABASE_URL.get()
        confirm_timeout_s = REX_BUS_CONFIRM_TIMEOUT.get()
        replication = REX_REPLICATION.get()
    except ConfigError as error:
        logging.getLogger("rex.settlement").error("config: %s", error)
        return 2
    try:
        store = open_store(database_url, process_config.data_dir)
    except Exception as error:  # the driver's own error types: PostgreSQL down, ...
        failure = classify(error, Reaching())
        if failure is None:
            raise
        logging.getLogger("rex.settlement").error("store: %s", failure.message)
        return failure.status
    try:
        metrics.serve(metrics.SETTLEMENT_EXPORTER, args.metrics_port, address=args.metrics_address)
    except metrics.ExporterError as error:
        logging.getLogger("rex.settlement").error("%s", error)
        store.close()
        return error.exit_status
    bus = AmqpBus(
        broker_url,
        name="rex-settlement",
        confirm_timeout=confirm_timeout_s,
        replication=replication,
    )
    metrics.export_bus(metrics.SETTLEMENT_EXPORTER, bus)
    enabled = [m.id for m in members.values() if m.enabled]
    kinds: dict[str, RequestKind] = {
        **settings_request_kinds(config),
        **bill_request_kinds(bill_desk, enabled),
        **bill_operator_kinds(bill_desk),
        **dispute_request_kinds(),
        **offline_request_kinds(products, config, enabled),
        **payment_request_kinds(config.banks),
        **audit_request_kinds(),
    }
    desk = RequestDesk(store, kinds, members, accounts, deployment=process_config.deployment)
    if args.no_payer:
        service = SettlementService(bus, store, products.values(), config, desk=desk)
    else:
        client = AmqpBankClient(bus, topology.SETTLEMENT_BANK_CLIENT, config.banks)
        banks = {bank: client.adapter(bank) for bank in client.bank_ids}
        service = SettlementService(
            bus, store, products.values(), config, banks=banks, bank_client=client, desk=desk
        )
    signal.signal(signal.SIGTERM, lambda *_: bus.call_soon(service.stop))
    signal.signal(signal.SIGINT, lambda *_: bus.call_soon(service.stop))
    service.start()
    bus.run()
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
