#!/usr/bin/env python
"""Run the capacity-forecaster pipeline: the numbered notebooks in order, with papermill.

python run_all.py --params params/local.yaml            # the whole pipeline
python run_all.py --params params/aws.yaml              # the same, mirrored to S3
python run_all.py --list                                # the stages, what each reads and writes
python run_all.py --params P --run-id ID --from 03      # complete or re-run a finished run
python run_all.py --params P --only 02,03 --skip 01 --set forecast.horizon_days=90
"""

from __future__ import annotations

import argparse
import logging
import sys

from capacity_forecaster.core.errors import CapacityForecasterError, ParamsError
from capacity_forecaster.runner.interrupt import EXIT_CODE as INTERRUPTED_EXIT_CODE
from capacity_forecaster.runner.interrupt import RunInterrupted
from capacity_forecaster.runner.pipeline import describe_pipeline, discover_stages, run_pipeline


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--params", default="params/local.yaml", help="params YAML file (default: %(default)s)"
    )
    parser.add_argument(
        "--run-id", help="run id (default: <run.name>-<UTC timestamp>); reuse one to complete a run"
    )
    parser.add_argument(
        "--only", action="append", metavar="NN[,NN]", help="run only these stages, e.g. 02,03"
    )
    parser.add_argument("--from", dest="start", metavar="NN", help="run from this stage on")
    parser.add_argument("--skip", action="append", metavar="NN[,NN]", help="leave these stages out")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params key, e.g. --set data.synthetic.n_servers=50")  # fmt: skip
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the stages with the products each reads and writes, and exit",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "DEBUG":
        # The runner logs each stage, its status and seconds; the libraries' chatter stays quiet.
        for noisy in ("papermill", "nbconvert", "botocore", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        logging.getLogger("traitlets").setLevel(logging.ERROR)  # nbconvert's alt-text notices
    try:
        if args.list:
            print(describe_pipeline(discover_stages()))
            return 0
        run_pipeline(
            args.params,
            overrides=args.overrides,
            run_id=args.run_id,
            only=args.only,
            start=args.start,
            skip=args.skip,
        )
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as exc:  # Ctrl-C or SIGTERM, after the manifest recorded where
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except CapacityForecasterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the run started, or a second one between stages
        print("error: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
