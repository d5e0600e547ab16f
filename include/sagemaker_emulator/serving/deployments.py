"""Endpoint deployments: threads that walk AWS's status machine (create, blue/green update, weights, delete),
load the variants' models, restore endpoints after a restart and keep private copies of their artifacts."""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from typing import TYPE_CHECKING, Any

from ..algorithms import ModelInvocationError, algorithm_for_image, algorithm_version
from ..aws import MissingObject
from ..errors import AwsError
from ..validation import arn, split_s3_uri
from . import script_mode
from .artifacts import ArtifactStore
from .runtime import Route, Variant, extract_archive, instance_id, load_archive
from .telemetry import Telemetry

if TYPE_CHECKING:
    from ..aws import MotoFacade
    from ..config import EmulatorConfig
    from ..faults import FaultRegistry
    from ..store import Store

log = logging.getLogger(__name__)

# Nominal AWS durations (seconds) of the transitions, multiplied by --time-scale, and never shorter than
# --min-transition-seconds (EmulatorConfig.transition).
PROVISION_SECONDS = 240.0
ROLLBACK_SECONDS = 60.0
WEIGHTS_SECONDS = 30.0
DELETE_SECONDS = 30.0


class DeployError(Exception):
    """A configuration could not be brought up; ``reason`` is the endpoint's FailureReason."""


def resolved_image(image: str) -> str:
    # A stable digest per image URI: DeployedImages shows what the tag resolved to.
    return image.split("@")[0].rsplit(":", 1)[0] + "@sha256:" + hashlib.sha256(image.encode()).hexdigest()


def _copies(spec: dict[str, Any]) -> list[str]:
    """The private copies a deployment spec claims: the model artifact, and a script-mode model's code."""
    return [spec[key] for key in ("Artifact", "CodeArtifact") if spec.get(key)]


def _retire(fleet: dict[str, Variant] | None) -> None:
    """Stop what served a fleet that no route uses any more (script-mode workers), off the caller's thread."""
    if fleet:
        threading.Thread(
            target=lambda: [variant.close() for variant in fleet.values()], name="retire-fleet", daemon=True
        ).start()


def _warm_imports() -> None:
    try:
        import sklearn.linear_model  # noqa: F401
        import xgboost  # noqa: F401
    except Exception:  # only a warm-up; the real load reports any problem
        log.debug("warm-up import failed", exc_info=True)


class Deployments:
    """Endpoint lifecycles. Receives what it needs (settings, resource store, faults, S3/CloudWatch facade),
    not the whole emulator."""

    def __init__(self, *, config: EmulatorConfig, store: Store, faults: FaultRegistry, moto: MotoFacade):
        self.config = config
        self.store = store
        self.faults = faults
        self.moto = moto
        self.telemetry = Telemetry(moto)
        # endpoint name (lower case) -> routing table; replaced whole, never mutated.
        self.routes: dict[str, Route] = {}
        # endpoint name (lower case) -> the variants of the configuration it serves (the "blue" fleet).
        self.fleets: dict[str, dict[str, Variant]] = {}
        self._stop = threading.Event()
        # Set once the endpoints of the previous run serve again (the training forkserver's warm-up waits
        # for it: both import xgboost, and on a small machine the restore should not share the CPU).
        self.restored = threading.Event()
        self._threads: set[threading.Thread] = set()
        self.script_root = self.config.data_dir / "serving" / "script"
        self.artifacts = ArtifactStore(
            self.config.data_dir / "serving" / "artifacts", fsync=self.config.durability == "fsync"
        )

    # ================================================================================== lifecycle
    def start(self) -> None:
        """Bring endpoints back after a restart: the records survived, the loaded models did not.

        What each endpoint serves comes from its own record (the model definitions captured when it was
        deployed, and private copies of their artifacts), so deleting its config, model or S3 object does not
        take it down, as on AWS. An update caught mid-way starts over while the old fleet serves: it finishes
        if its artifacts can still be loaded (from the private copies once it had loaded them), otherwise it
        rolls back like any failed update. A rollback caught mid-way ends rolled back.
        """
        self.telemetry.start()
        self._reclaim()
        # Script-mode working directories of a previous run (a kill -9 leaves them); none is in use yet.
        shutil.rmtree(self.script_root, ignore_errors=True)
        started = time.perf_counter()
        restored = 0
        for record in self.store.list("endpoint"):
            name, status = record["EndpointName"], record["EndpointStatus"]
            try:
                if status == "Creating":
                    self.begin_create(name)
                elif status == "Deleting":
                    self.begin_delete(name)
                elif status in ("InService", "Updating", "RollingBack", "SystemUpdating"):
                    self._restore(record)
                    restored += 1
            except Exception:
                log.exception("could not restore endpoint %s", name)
        if restored:
            log.info("restored %d endpoints in %.1f s", restored, time.perf_counter() - started)
        self.restored.set()
        # xgboost/scikit-learn take seconds to import: do it now, not in the first deployment or cold start
        # (after the restores above, which need only what they load, so they don't compete with it).
        threading.Thread(target=_warm_imports, name="serving-warm-imports", daemon=True).start()

    def _restore(self, record: dict[str, Any]) -> None:
        name = record["EndpointName"]
        deployed = record.get("_deployed")
        try:
            # Records written before private copies existed name only their config: adopt them once.
            specs = deployed or self.deployment_spec(self._config(record["EndpointConfigName"]))
            fleet, loaded = self._load_fleet(record, specs)
        except DeployError as exc:
            self._update(name, EndpointStatus="Failed", FailureReason=str(exc), _pending=None)
            return
        try:
            if loaded != deployed:
                self._update(name, _deployed=loaded)
        finally:
            self._release(loaded)
        self._activate(name, fleet, self._weights(record["ProductionVariants"]))
        status = record["EndpointStatus"]
        if status == "RollingBack" or (status == "Updating" and not record.get("_pending")):
            self._update(name, EndpointStatus="InService", PendingDeploymentSummary=None, _pending=None)
        elif status == "Updating" and record["_pending"]["kind"] == "weights":
            self.begin_weights(name)
        elif status == "Updating":
            self.begin_update(name)  # the interrupted deployment starts over; the old fleet serves meanwhile
        elif status == "SystemUpdating":
            self._update(name, EndpointStatus="InService")

    # ================================================================================== private copies
    def _release(self, specs: list[dict[str, Any]]) -> None:
        self.artifacts.release(digest for spec in specs for digest in _copies(spec))

    def _artifacts_in_use(self) -> set[str]:
        in_use = set()
        for record in self.store.list("endpoint"):
            specs = [
                *(record.get("_deployed") or []),
                *(record.get("_deploying") or []),
                *((record.get("_pending") or {}).get("Variants") or []),
            ]
            in_use.update(digest for spec in specs for digest in _copies(spec))
        return in_use

    def _reclaim(self) -> None:
        try:
            self.artifacts.reclaim(self._artifacts_in_use)
        except OSError:  # only housekeeping: the next deployment change tries again
            log.exception("could not reclaim unused artifact copies")

    def shutdown(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(2)
        script_mode.close_all()
        self.telemetry.shutdown()

    def _spawn(self, target: Any, name: str) -> None:
        def run() -> None:
            try:
                target(name)
            except Exception:
                log.exception("deployment thread for endpoint %s failed", name)
            finally:
                self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"endpoint-{name}", daemon=True)
        self._threads.add(thread)
        thread.start()

    def _sleep(self, nominal: float) -> bool:
        """Wait the scaled nominal duration; False when the emulator is stopping (leave state as is)."""
        seconds = self.config.scaled(nominal)
        if seconds > 0:
            self._stop.wait(seconds)
        return not self._stop.is_set()

    def _hold(self, nominal: float) -> bool:
        """Keep a transitional status (Creating, Updating, RollingBack, Deleting) once the real work is done:
        the scaled nominal duration, at least ``min_transition_seconds``. Counted from the end of the work, so
        a Describe sent right after the call and delayed by that work (same process, busy CPU) still sees
        the transitional status. False when the emulator is stopping."""
        self._stop.wait(self.config.transition(nominal))
        return not self._stop.is_set()

    # ================================================================================== records
    def _record(self, name: str) -> dict[str, Any] | None:
        return self.store.get("endpoint", name)

    def _update(self, name: str, **fields: Any) -> dict[str, Any] | None:
        def change(record: dict[str, Any]) -> None:
            for key, value in fields.items():
                if value is None:
                    record.pop(key, None)
                else:
                    record[key] = value
            record["LastModifiedTime"] = time.time()

        return self.store.update("endpoint", name, change)

    def _config(self, name: str) -> dict[str, Any]:
        config = self.store.get("endpoint-config", name)
        if config is None:
            raise DeployError(f'Could not find endpoint configuration "{arn("us-east-1", "endpoint-config", name)}".')
        return config

    def _image(self, model_name: str) -> str:
        model = self.store.get("model", model_name) or {}
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        return container.get("Image", "")

    def pending_variants(self, config: dict[str, Any], status: str, started: float) -> list[dict[str, Any]]:
        out = []
        for v in config["ProductionVariants"]:
            image = self._image(v["ModelName"])
            out.append(
                {
                    "VariantName": v["VariantName"],
                    "DeployedImages": [
                        {"SpecifiedImage": image, "ResolvedImage": resolved_image(image), "ResolutionTime": started}
                    ],
                    "CurrentWeight": 0.0,
                    "DesiredWeight": float(v.get("InitialVariantWeight", 1.0)),
                    "CurrentInstanceCount": 0,
                    "DesiredInstanceCount": int(v.get("InitialInstanceCount", 1)),
                    "InstanceType": v.get("InstanceType"),
                    "VariantStatus": [{"Status": status, "StartTime": started}],
                }
            )
        return [{k: val for k, val in v.items() if val is not None} for v in out]

    @staticmethod
    def _in_service_variants(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for v in pending:
            v = {k: val for k, val in v.items() if k not in ("VariantStatus", "InstanceType")}
            v["CurrentWeight"] = v["DesiredWeight"]
            v["CurrentInstanceCount"] = v["DesiredInstanceCount"]
            out.append(v)
        return out

    @staticmethod
    def _weights(variants: list[dict[str, Any]]) -> dict[str, float]:
        return {v["VariantName"]: float(v.get("CurrentWeight", v.get("DesiredWeight", 1.0))) for v in variants}

    # ================================================================================== loading
    def deployment_spec(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """What a deployment of ``config`` will load, captured when it is requested: each variant's model
        container (None if the model does not exist; the deployment then fails saying so)."""
        specs = []
        for variant in config["ProductionVariants"]:
            model = self.store.get("model", variant["ModelName"])
            container = None
            if model is not None:
                container = model.get("PrimaryContainer") or (model.get("Containers") or [None])[0]
            specs.append(
                {"VariantName": variant["VariantName"], "ModelName": variant["ModelName"], "Container": container}
            )
        return specs

    def _load_fleet(
        self, record: dict[str, Any], specs: list[dict[str, Any]]
    ) -> tuple[dict[str, Variant], list[dict[str, Any]]]:
        """Load every variant of a deployment. Returns the fleet and the specs with the digest of each
        single-model artifact's private copy, which stay claimed until the caller ``_release``s them."""
        loaded: list[dict[str, Any]] = []
        fleet: dict[str, Variant] = {}
        try:
            self._load_variants(record, specs, loaded, fleet)
        except BaseException:
            self._release(loaded)
            _retire(fleet)
            raise
        return fleet, loaded

    def _load_variants(
        self,
        record: dict[str, Any],
        specs: list[dict[str, Any]],
        loaded: list[dict[str, Any]],
        fleet: dict[str, Variant],
    ) -> None:
        """Fill ``fleet`` (the caller stops what it holds if a later variant fails)."""
        name, region = record["EndpointName"], record.get("_region", "us-east-1")
        for spec in specs:
            variant_name = spec["VariantName"]
            container = spec.get("Container")
            if not container:
                raise DeployError(f'Could not find model "{arn(region, "model", spec["ModelName"])}".')
            script = script_mode.script_source(container)
            algorithm = "sklearn" if script is not None else algorithm_for_image(container["Image"])
            url = container.get("ModelDataUrl") or ""
            common = {
                "endpoint": name,
                "region": region,
                "name": variant_name,
                "model_name": spec["ModelName"],
                "algorithm": algorithm,
                "moto": self.moto,
            }
            if container.get("Mode") == "MultiModel":
                setting = (container.get("MultiModelConfig") or {}).get("ModelCacheSetting", "Enabled")
                variant = Variant(
                    **common,
                    model_data_url=url,
                    cache_capacity=self.config.mme_cache_size,
                    cache_enabled=setting != "Disabled",
                )
                self.telemetry.log(
                    region, name, variant.log_stream, f"Multi-model server started; models are loaded from {url}"
                )
                variant.cache.on_loaded = self._load_logger(variant)  # type: ignore[union-attr]
                loaded.append(spec)
            elif script is not None:
                predictor, digests = self._load_script(name, region, variant_name, url, spec, script)
                loaded.append({**spec, **digests})
                variant = Variant(**common, predictor=predictor, model_data_url=url)
                self.telemetry.log(
                    region,
                    name,
                    variant.log_stream,
                    f"Serving model {spec['ModelName']} from {url} with {script.program} "
                    f"(workers {', '.join(map(str, predictor.pids))}); listening for /invocations",
                )
            else:
                version = algorithm_version(container["Image"])
                predictor, digest = self._load_single(name, region, variant_name, url, spec.get("Artifact"), version)
                loaded.append({**spec, "Artifact": digest})
                variant = Variant(**common, predictor=predictor, model_data_url=url)
                self.telemetry.log(
                    region,
                    name,
                    variant.log_stream,
                    f"Loaded {algorithm} model {spec['ModelName']} from {url}; listening for /invocations",
                )
            fleet[variant_name] = variant

    def _load_logger(self, variant: Variant) -> Any:
        def loaded(target: str, ms: float) -> None:
            self.telemetry.log(
                variant.region,
                variant.endpoint,
                variant.log_stream,
                f"Loaded model {target} from {variant.target_url(target)} in {ms:.1f} ms",
            )

        return loaded

    def _load_single(
        self, endpoint: str, region: str, variant_name: str, url: str, digest: str | None, version: str | None
    ) -> tuple[Any, str]:
        """The predictor and the digest of the artifact's private copy (claimed): the copy when there is one,
        else the bytes downloaded from S3, which then get a copy."""
        raw = self.artifacts.read(digest) if digest else None
        if raw is None:
            raw = self._download(url)
        try:
            predictor = load_archive(raw, url, version)
        except ModelInvocationError as exc:
            self.telemetry.log(region, endpoint, f"{variant_name}/{instance_id(endpoint, variant_name)}", exc.message)
            raise DeployError(self._health_check_message(variant_name)) from None
        # Only an artifact that loads gets a copy.
        return predictor, self.artifacts.keep(raw)

    def _load_script(
        self,
        endpoint: str,
        region: str,
        variant_name: str,
        url: str,
        spec: dict[str, Any],
        script: script_mode.ScriptSource,
    ) -> tuple[script_mode.ScriptModePredictor, dict[str, str]]:
        """Start a script-mode variant's workers. Returns the predictor and the digests of the private copies
        of its model.tar.gz and sourcedir.tar.gz (claimed)."""
        stream = f"{variant_name}/{instance_id(endpoint, variant_name)}"

        def log_line(line: str) -> None:
            self.telemetry.log(region, endpoint, stream, line)

        raw = self.artifacts.read(spec["Artifact"]) if spec.get("Artifact") else None
        if raw is None:
            raw = self._download(url)
        code_raw = None
        if script.submit_directory is not None:
            code_raw = self.artifacts.read(spec["CodeArtifact"]) if spec.get("CodeArtifact") else None
            if code_raw is None:
                code_raw = self._download_code(script.submit_directory, log_line, variant_name)
        workdir = script_mode.new_workdir(self.script_root)
        try:
            model_dir = workdir / "model"
            model_dir.mkdir()
            extract_archive(raw, model_dir, url)
            predictor = script_mode.start_predictor(
                script, workdir=workdir, model_dir=model_dir, code_raw=code_raw, log_line=log_line, region=region
            )
        except ModelInvocationError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            log_line(exc.message)
            cause = exc.message.split("\n", 1)[0][:400]  # FailureReason holds at most 1,024 characters
            raise DeployError(f"{self._health_check_message(variant_name)} Cause: {cause}") from None
        digests = {"Artifact": self.artifacts.keep(raw)}
        if code_raw is not None:
            digests["CodeArtifact"] = self.artifacts.keep(code_raw)
        return predictor, digests

    def _download_code(self, url: str, log_line: Any, variant_name: str) -> bytes:
        bucket, key = split_s3_uri(url, "SAGEMAKER_SUBMIT_DIRECTORY")
        try:
            return self.moto.s3_get(bucket, key)
        except MissingObject:
            message = f"Failed to download the source directory {url} (SAGEMAKER_SUBMIT_DIRECTORY): no such object."
            log_line(message)
            raise DeployError(f"{self._health_check_message(variant_name)} Cause: {message}") from None

    def _download(self, url: str) -> bytes:
        download_error = DeployError(
            f'Failed to download model data for container "container_1" from URL: "{url}". Please ensure that '
            "there is an object located at the URL and that the role passed to CreateModel has permissions to "
            "download the object."
        )
        try:
            bucket, key = split_s3_uri(url, "ModelDataUrl")
        except AwsError:
            raise download_error from None
        try:
            return self.moto.s3_get(bucket, key)
        except MissingObject:
            raise download_error from None

    @staticmethod
    def _health_check_message(variant_name: str) -> str:
        return (
            f"The primary container for production variant {variant_name} did not pass the ping health check. "
            "Please check CloudWatch logs for this endpoint."
        )

    def _injected_failure(self, name: str, config: dict[str, Any]) -> None:
        fault = self.faults.take("deployment_failure", endpoint_name=name)
        if fault is not None:
            raise DeployError(
                fault.get("reason") or self._health_check_message(config["ProductionVariants"][0]["VariantName"])
            )

    # ================================================================================== routing
    def _activate(self, name: str, fleet: dict[str, Variant], weights: dict[str, float]) -> None:
        key = name.lower()
        self.fleets[key] = fleet
        self.routes[key] = Route([(v, weights.get(n, 1.0)) for n, v in fleet.items()])

    def _mixed_route(
        self,
        old: dict[str, Variant],
        old_w: dict[str, float],
        new: dict[str, Variant],
        new_w: dict[str, float],
        share: float,
    ) -> Route:
        """``share`` of the traffic to the new fleet, the rest to the old one, each split by its weights."""
        old_total = sum(old_w.get(n, 1.0) for n in old) or 1.0
        new_total = sum(new_w.get(n, 1.0) for n in new) or 1.0
        entries = [(v, old_w.get(n, 1.0) / old_total * (1 - share)) for n, v in old.items()]
        entries += [(v, new_w.get(n, 1.0) / new_total * share) for n, v in new.items()]
        return Route(entries)

    # ================================================================================== create
    def begin_create(self, name: str) -> None:
        self._spawn(self._run_create, name)

    def _run_create(self, name: str) -> None:
        record = self._record(name)
        if record is None:
            return
        try:
            specs = record.get("_deploying")
            if specs is None:  # a record from before deployment specs were captured
                specs = self.deployment_spec(self._config(record["EndpointConfigName"]))
            self._injected_failure(name, {"ProductionVariants": specs})
            fleet, loaded = self._load_fleet(record, specs)
        except DeployError as exc:
            if self._hold(PROVISION_SECONDS):
                self._update(name, EndpointStatus="Failed", FailureReason=str(exc), _deploying=None)
                self._reclaim()
            return
        try:
            if not self._hold(PROVISION_SECONDS):
                return
            variants = self._in_service_variants(record["ProductionVariants"])
            self._activate(name, fleet, self._weights(variants))
            self._update(
                name,
                EndpointStatus="InService",
                ProductionVariants=variants,
                _deployed=loaded,
                _deploying=None,
                _create_deployment_config=None,
            )
        finally:
            self._release(loaded)

    # ================================================================================== update
    def begin_update(self, name: str) -> None:
        self._spawn(self._run_update, name)

    def _set_pending_status(self, name: str, status: str, message: str | None = None) -> None:
        started = time.time()

        def change(record: dict[str, Any]) -> None:
            summary = record.get("PendingDeploymentSummary")
            if not summary:
                return
            for v in summary["ProductionVariants"]:
                entry = {"Status": status, "StartTime": started}
                if message:
                    entry["StatusMessage"] = message
                v["VariantStatus"] = [entry]

        self.store.update("endpoint", name, change)

    def _run_update(self, name: str) -> None:
        record = self._record(name)
        if record is None or not record.get("_pending"):
            return
        pending = record["_pending"]
        key = name.lower()
        old_fleet = self.fleets.get(key, {})
        old_weights = self._weights(record["ProductionVariants"])
        try:
            specs = pending.get("Variants")
            if specs is None:  # a record from before deployment specs were captured
                specs = self.deployment_spec(self._config(pending["EndpointConfigName"]))
            self._injected_failure(name, {"ProductionVariants": specs})
            new_fleet, loaded = self._load_fleet(record, specs)
        except DeployError as exc:
            if self._hold(PROVISION_SECONDS):
                self._roll_back(name, f"Failed to update endpoint: {exc}")
            return
        try:
            self._deploy_update(name, record, pending, old_fleet, old_weights, new_fleet, loaded)
        finally:
            self._release(loaded)

    def _deploy_update(
        self,
        name: str,
        record: dict[str, Any],
        pending: dict[str, Any],
        old_fleet: dict[str, Variant],
        old_weights: dict[str, float],
        new_fleet: dict[str, Variant],
        loaded: list[dict[str, Any]],
    ) -> None:
        key = name.lower()

        def remember(r: dict[str, Any]) -> None:
            # A crash from here on resumes the update from the private copies, whatever happens in S3.
            if r.get("_pending"):
                r["_pending"]["Variants"] = loaded

        self.store.update("endpoint", name, remember)
        # Until the switch below the endpoint shows Updating on its old EndpointConfigName, as on AWS.
        if not self._hold(PROVISION_SECONDS):
            return
        # The new variants' weights/counts, or the current ones when asked to retain them.
        new_variants = self._in_service_variants(record["PendingDeploymentSummary"]["ProductionVariants"])
        if pending.get("RetainAllVariantProperties"):
            current = {v["VariantName"]: v for v in record["ProductionVariants"]}
            excluded = set(pending.get("ExcludeRetainedVariantProperties") or [])
            for v in new_variants:
                old = current.get(v["VariantName"])
                if old is None:
                    continue
                if "DesiredWeight" not in excluded:
                    v["DesiredWeight"] = v["CurrentWeight"] = old.get("CurrentWeight", old.get("DesiredWeight", 1.0))
                if "DesiredInstanceCount" not in excluded:
                    count = old.get("CurrentInstanceCount", old.get("DesiredInstanceCount", 1))
                    v["DesiredInstanceCount"] = v["CurrentInstanceCount"] = count
        new_weights = self._weights(new_variants)

        deployment = pending.get("DeploymentConfig") or {}
        blue_green = deployment.get("BlueGreenUpdatePolicy") or {}
        routing = blue_green.get("TrafficRoutingConfiguration") or {"Type": "ALL_AT_ONCE"}
        alarms = [a["AlarmName"] for a in (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
        wait = float(routing.get("WaitIntervalInSeconds", 0))
        for share in self._traffic_steps(routing, new_variants):
            self._set_pending_status(name, "ActivatingTraffic", f"Shifting {share:.0%} of traffic to the new fleet")
            self.routes[key] = self._mixed_route(old_fleet, old_weights, new_fleet, new_weights, share)
            self._set_pending_status(name, "Baking", f"Baking with {share:.0%} of traffic on the new fleet")
            fired = self._bake(record.get("_region", "us-east-1"), alarms, wait)
            if fired is None:
                return  # stopping: the restart resumes the deployment
            if fired:
                self.routes[key] = Route([(v, old_weights.get(n, 1.0)) for n, v in old_fleet.items()])
                _retire(new_fleet)
                self._roll_back(
                    name,
                    f"Endpoint update rolled back because CloudWatch alarm(s) {', '.join(fired)} "
                    "went into ALARM state during the deployment.",
                )
                return
        if not self._sleep(float(blue_green.get("TerminationWaitInSeconds", 0))):
            return
        self._activate(name, new_fleet, new_weights)
        _retire({n: v for n, v in old_fleet.items() if v not in new_fleet.values()})
        fields: dict[str, Any] = {
            "EndpointStatus": "InService",
            "EndpointConfigName": pending["EndpointConfigName"],
            "ProductionVariants": new_variants,
            "PendingDeploymentSummary": None,
            "FailureReason": None,
            "_pending": None,
            "_deployed": loaded,
        }
        if deployment:
            fields["LastDeploymentConfig"] = deployment
        self._update(name, **fields)
        self._reclaim()

    @staticmethod
    def _traffic_steps(routing: dict[str, Any], variants: list[dict[str, Any]]) -> list[float]:
        kind = routing.get("Type", "ALL_AT_ONCE")
        if kind == "ALL_AT_ONCE":
            return [1.0]
        size = routing.get("CanarySize" if kind == "CANARY" else "LinearStepSize") or {}
        instances = sum(int(v.get("DesiredInstanceCount", 1)) for v in variants) or 1
        if size.get("Type") == "INSTANCE_COUNT":
            step = min(1.0, size.get("Value", 1) / instances)
        else:
            step = min(1.0, size.get("Value", 100) / 100.0)
        if kind == "CANARY":
            return [min(step, 0.5), 1.0]  # a canary is at most half of the new fleet
        steps, share = [], step
        while share < 1.0 - 1e-9:
            steps.append(share)
            share += step
        return [*steps, 1.0]

    def _bake(self, region: str, alarms: list[str], nominal: float) -> list[str] | None:
        """Watch the alarms for the scaled bake time; the ones in ALARM, [] if none, None when stopping."""
        deadline = time.monotonic() + self.config.scaled(nominal)
        while True:
            if alarms:
                states = self.moto.alarm_states(region, alarms)
                fired = [a for a in alarms if states.get(a) == "ALARM"]
                if fired:
                    return fired
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if self._stop.wait(min(0.1, remaining)):
                return None

    def _roll_back(self, name: str, reason: str) -> None:
        self._update(name, EndpointStatus="RollingBack", FailureReason=reason)
        self._set_pending_status(name, "Deleting", "Rolling back to the previous configuration")
        if not self._hold(ROLLBACK_SECONDS):
            return
        self._update(name, EndpointStatus="InService", PendingDeploymentSummary=None, _pending=None)
        self._reclaim()

    # ================================================================================== weights
    def begin_weights(self, name: str) -> None:
        self._spawn(self._run_weights, name)

    def _run_weights(self, name: str) -> None:
        if not self._hold(WEIGHTS_SECONDS):
            return
        record = self._record(name)
        if record is None:
            return
        variants = [
            {**v, "CurrentWeight": v["DesiredWeight"], "CurrentInstanceCount": v["DesiredInstanceCount"]}
            for v in record["ProductionVariants"]
        ]
        fleet = self.fleets.get(name.lower())
        if fleet is not None:
            self._activate(name, fleet, self._weights(variants))
        self._update(name, EndpointStatus="InService", ProductionVariants=variants, _pending=None)

    # ================================================================================== delete
    def begin_delete(self, name: str) -> None:
        # Traffic stops at once; the record (status Deleting) goes when the teardown is over.
        self.routes.pop(name.lower(), None)
        _retire(self.fleets.pop(name.lower(), None))
        if self.config.transition(DELETE_SECONDS) == 0:
            self._finish_delete(name)
        else:
            self._spawn(self._run_delete, name)

    def _run_delete(self, name: str) -> None:
        if self._hold(DELETE_SECONDS):
            self._finish_delete(name)

    def _finish_delete(self, name: str) -> None:
        record = self._record(name)
        if record is not None:
            self.store.delete("tags", record["EndpointArn"])
            self.store.delete("endpoint", name)
            self._reclaim()
