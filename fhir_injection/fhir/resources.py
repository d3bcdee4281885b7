"""The FHIR resources this adapter reads, and how their references are written.

One table, :data:`TYPES`, says for each resource type we use which element names its patient,
whether it is found by a search on that patient (rather than by a reference to it), and in
which order a loader must send it to a server with referential integrity. Every other list of
types in the package is derived from it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

__all__ = [
    "Conditional",
    "FHIR_TYPE_NAMES",
    "FOUND_BY_PATIENT",
    "LOAD_ORDER",
    "MAPPING",
    "PATIENT_ELEMENT",
    "ResourceType",
    "TYPES",
    "USED_TYPES",
    "conditional_reference",
    "full_url_key",
    "id_from_full_url",
    "identifiers_of",
    "identify_entries",
    "key_for",
    "patient_id_of",
    "ref_key",
    "reference_of",
    "rewrite_references",
    "shown_reference",
    "split_reference",
    "token_matches",
    "token_text",
]

#: For ``isinstance(value, MAPPING)``: a JSON object is a dict, and the dict check, tried first, costs
#: far less than the abstract ``Mapping`` one, which still admits any other mapping.
MAPPING = (dict, Mapping)


@dataclass(frozen=True)
class ResourceType:
    name: str
    patient_element: str | None = None  # the element that names the resource's patient
    found_by_patient: bool = False  # fetched by a search on its patient, not through a reference


# In the order a server with referential integrity accepts them: referenced types first.
# Encounter and Condition point at each other (Encounter.diagnosis, Condition.encounter); the loader
# sends Encounters without those elements first and whole again after the Conditions.
TYPES: tuple[ResourceType, ...] = (
    ResourceType("Organization"),
    ResourceType("Location"),  # Encounter.location: the clinic's time zone
    ResourceType("Practitioner"),
    ResourceType("PractitionerRole"),
    ResourceType("Patient"),
    ResourceType("Medication"),
    ResourceType("Coverage", "beneficiary", found_by_patient=True),
    ResourceType("Consent", "patient", found_by_patient=True),
    ResourceType("Encounter", "subject"),
    ResourceType("Condition", "subject"),
    ResourceType("ChargeItem", "subject", found_by_patient=True),
    # a Medicare ESA claim's hemoglobin or hematocrit (CMS CR 5699)
    ResourceType("Observation", "subject", found_by_patient=True),
    ResourceType("MedicationAdministration", "subject"),
)
USED_TYPES = frozenset(t.name for t in TYPES)
LOAD_ORDER = tuple(t.name for t in TYPES)
PATIENT_ELEMENT = {t.name: t.patient_element for t in TYPES if t.patient_element}
# Every type found by patient has a patient element; testing it tells mypy the element is a str.
FOUND_BY_PATIENT = tuple(
    (t.name, t.patient_element) for t in TYPES if t.found_by_patient and t.patient_element
)


def split_reference(reference: str | None) -> tuple[str, str] | None:
    """``"Patient/1"``, ``"http://x/fhir/Patient/1"`` or ``"Patient/1/_history/2"`` -> (type, id).

    Contained (``#x``), ``urn:``, conditional (``Type?identifier=…``) and malformed references
    give None.
    """
    if not reference or not isinstance(reference, str):
        return None
    if "?" not in reference:  # the usual "Type/id": split at once, no cache
        rtype, _, rid = reference.partition("/")
        if (
            rid and "/" not in rid and rtype[:1].isupper()
        ):  # an upper-case start is neither "#" nor "urn:"
            return rtype, rid
    return _split_text(reference)


# The usual "Type/id" is split above: cached, each patient's own references (its encounters and
# conditions, thousands a run) missed the cache and pushed the shared ones out, and a miss cost
# three times a split.
@lru_cache(maxsize=8192)  # absolute, versioned, conditional: the same clinics and clinicians
def _split_text(reference: str) -> tuple[str, str] | None:
    if "?" in reference and "=" in reference.partition("?")[2]:
        return None  # a search (conditional reference), not a resource's address
    if reference.startswith(("#", "urn:")):
        return None
    parts = reference.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not parts[-1] or not parts[-2][:1].isupper():
        return None
    return parts[-2], parts[-1]


def key_for(reference: str, pair: tuple[str, str]) -> str:
    """``Type/id`` of a reference split into ``pair``: a reference that is just that is its own key."""
    return (
        reference if len(reference) == len(pair[0]) + len(pair[1]) + 1 else f"{pair[0]}/{pair[1]}"
    )


def ref_key(reference: str | None) -> str | None:
    """Normalise a literal reference to ``Type/id`` (None when not one)."""
    pair = split_reference(reference)
    if pair is None:
        return None
    assert reference is not None  # split_reference gives a pair only for a non-empty str
    return key_for(reference, pair)


def patient_id_of(resource: Mapping) -> str | None:
    """The id of the Patient that ``resource`` belongs to, read from its patient element."""
    element = PATIENT_ELEMENT.get(resource.get("resourceType", ""))
    if not element:
        return None
    value = resource.get(element)
    if isinstance(value, list):  # R4 Coverage.beneficiary is single; tolerate lists
        value = value[0] if value else None
    if not isinstance(value, MAPPING):
        return None
    pair = split_reference(value.get("reference"))
    return pair[1] if pair and pair[0] == "Patient" else None


def reference_of(resource: Mapping) -> str:
    """``Type/id`` of a resource."""
    return f"{resource['resourceType']}/{resource['id']}"


# ----------------------------------------------------------------------------- conditional references

_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True)
class Conditional:
    """A conditional reference, ``Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|123``.

    ``tokens`` are the identifier values it asks for, any one of which may match (a comma in the
    search is an OR): (system, value), system None for "any system" (``identifier=123``) and ""
    for "no system" (``identifier=|123``). ``problem`` says why it cannot be resolved here (a
    search on something other than one ``identifier`` parameter), else None.
    """

    type: str
    tokens: tuple[tuple[str | None, str], ...]
    problem: str | None = None


def conditional_reference(reference: object) -> Conditional | None:
    """The search a conditional reference names; None when ``reference`` is not one."""
    if not isinstance(reference, str) or "?" not in reference:
        return None
    return _conditional(reference)


@lru_cache(
    maxsize=4096
)  # Synthea names the same clinicians and clinics on encounter after encounter
def _conditional(reference: str) -> Conditional | None:
    path, _, query = reference.partition("?")
    rtype = path.rstrip("/").rsplit("/", 1)[-1]
    if not _TYPE_NAME.fullmatch(rtype) or "=" not in query:
        return None
    params = [part.partition("=") for part in query.split("&") if part]
    if len(params) != 1 or unquote(params[0][0]) != "identifier":
        names = sorted({unquote(name) for name, _, _ in params})
        return Conditional(
            rtype, (), f"searches by {', '.join(names)}: only identifier= is resolved"
        )
    tokens = []
    for text in _split_unescaped(unquote(params[0][2]), ","):
        parts = _split_unescaped(text, "|")
        if len(parts) == 1:
            system, value = None, _unescape(parts[0])
        elif len(parts) == 2:
            system, value = _unescape(parts[0]), _unescape(parts[1])
        else:
            return Conditional(rtype, (), "has an identifier value that is not system|value")
        if not value:
            return Conditional(rtype, (), "has an identifier search without a value")
        tokens.append((system, value))
    if not tokens:
        return Conditional(rtype, (), "has an identifier search without a value")
    return Conditional(rtype, tuple(tokens))


def _split_unescaped(text: str, separator: str) -> list[str]:
    """``text`` split at each ``separator`` not escaped by a backslash (FHIR search escaping)."""
    if "\\" not in text:
        return text.split(separator)
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text) if "\\" in text else text


def token_text(system: str | None, value: str) -> str:
    """One identifier token as a search writes it (``system|value``, ``|value``, ``value``), escaped."""

    def esc(text: str) -> str:
        for char in ("\\", ",", "|", "$"):
            text = text.replace(char, "\\" + char)
        return text

    return esc(value) if system is None else f"{esc(system)}|{esc(value)}"


def identifiers_of(resource: Mapping) -> list[tuple[str, str]]:
    """(system, value) of each identifier with a text value; system "" when it has none."""
    found = []
    items = resource.get("identifier")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, MAPPING):
                value, system = item.get("value"), item.get("system")
                if isinstance(value, str) and value:
                    found.append((system if isinstance(system, str) else "", value))
    return found


def token_matches(token: tuple[str | None, str], system: str, value: str) -> bool:
    """Does an identifier (system, value) match a search token (system None: any)?"""
    return value == token[1] and (token[0] is None or token[0] == system)


#: Types whose identifiers name a clinician, a clinic or a product, not a patient: their values may
#: be shown in a message; any other type's identifier values (an MRN, a member id) are PHI.
_SHOWN_IDENTIFIER_TYPES = frozenset(
    {"Practitioner", "PractitionerRole", "Organization", "Location", "Medication", "Device"}
)


def shown_reference(reference: object) -> str:
    """A reference as a message may quote it: ids and codes only, never a patient's identifier."""
    if not isinstance(reference, str) or not reference:
        return "(no reference)"
    text = reference if len(reference) <= 160 else reference[:157] + "..."
    conditional = conditional_reference(reference)
    if conditional is not None:
        if conditional.type in _SHOWN_IDENTIFIER_TYPES:
            return f"'{text}'"
        if not conditional.tokens:
            return f"'{conditional.type}?…'"
        elided = ",".join("…" if s is None else f"{s}|…" for s, _ in conditional.tokens)
        return f"'{conditional.type}?identifier={elided}'"
    if (
        split_reference(reference) is not None
        or reference.startswith(("urn:uuid:", "urn:oid:"))
        or (reference.startswith("#") and _FHIR_ID.fullmatch(reference[1:]))
    ):
        return f"'{text}'"
    return "a reference that is not a FHIR reference"


# ----------------------------------------------------------------------------- Bundles


def id_from_full_url(full_url: object, rtype: str) -> str | None:
    """The id of a Bundle entry's resource that has none, from its ``fullUrl``.

    ``urn:uuid:<uuid>`` -> the uuid; ``urn:oid:<oid>`` -> the OID's dotted digits when they fit a
    FHIR id (64 characters), else ``oid-`` and the first 32 hex digits of its SHA-256; an absolute
    ``…/<Type>/<id>`` (with or without ``/_history/<v>``) of the resource's own type -> that id.
    None when no valid FHIR id can be derived.
    """
    if not isinstance(full_url, str):
        return None
    if full_url.startswith("urn:uuid:"):
        candidate = full_url[9:]
    elif full_url.startswith("urn:oid:"):
        oid = full_url[8:]
        if not oid or not _OID.fullmatch(oid):
            return None
        candidate = (
            oid if len(oid) <= 64 else "oid-" + hashlib.sha256(oid.encode()).hexdigest()[:32]
        )
    else:
        pair = split_reference(full_url)
        if pair is None or pair[0] != rtype or "://" not in full_url:
            return None
        candidate = pair[1]
    return candidate if _FHIR_ID.fullmatch(candidate) else None


_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


def full_url_key(full_url: str) -> str:
    """A fullUrl or a reference to it as the Bundle's index of fullUrls keys it: an absolute URL
    without its ``/_history/<v>``; anything else as written."""
    if "/_history/" in full_url and "://" in full_url:
        return full_url.split("/_history/", 1)[0]
    return full_url


def identify_entries(entries: list) -> dict[str, str]:
    """Give each Bundle entry's resource that has no id one from its ``fullUrl``
    (:func:`id_from_full_url`; in place), and return the Bundle's index of fullUrls: each entry's
    ``fullUrl`` (:func:`full_url_key`) -> the ``Type/id`` of its resource."""
    targets: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, MAPPING):
            continue
        resource, full_url = entry.get("resource"), entry.get("fullUrl")
        if not isinstance(resource, dict) or not isinstance(full_url, str):
            continue
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            continue
        if resource.get("id") is None and (derived := id_from_full_url(full_url, rtype)):
            resource["id"] = derived
        rid = resource.get("id")
        if isinstance(rid, str) and rid:
            targets[full_url_key(full_url)] = f"{rtype}/{rid}"
    return targets


def rewrite_references(resource: object, targets: Mapping[str, str]) -> None:
    """Replace, in place, every ``reference`` inside ``resource`` that names a key of ``targets``
    (a Bundle's fullUrls, see :func:`full_url_key`) with the ``Type/id`` it maps to."""
    stack = [resource]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            ref = value.get("reference")
            if isinstance(ref, str) and (target := targets.get(full_url_key(ref))) is not None:
                value["reference"] = target
            stack.extend(v for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend(v for v in value if isinstance(v, (dict, list)))


#: Every FHIR resource type name of R4 (4.0.1), R4B and R5: a Bulk Data file named after one of these
#: that is not in :data:`USED_TYPES` holds nothing this adapter reads and is skipped unopened. A name
#: not on this list (``export.ndjson``) says nothing about what the file holds, so it is read.
#: Source: the resource lists of hl7.org/fhir/R4/resourcelist.html, /R4B/ and /R5/.
FHIR_TYPE_NAMES = frozenset(
    """Account ActivityDefinition ActorDefinition AdministrableProductDefinition AdverseEvent
    AllergyIntolerance Appointment AppointmentResponse ArtifactAssessment AuditEvent Basic Binary
    BiologicallyDerivedProduct BiologicallyDerivedProductDispense BodyStructure Bundle
    CapabilityStatement CarePlan CareTeam CatalogEntry ChargeItem ChargeItemDefinition Citation Claim
    ClaimResponse ClinicalImpression ClinicalUseDefinition CodeSystem Communication
    CommunicationRequest CompartmentDefinition Composition ConceptMap Condition ConditionDefinition
    Consent Contract Coverage CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue
    Device DeviceAssociation DeviceDefinition DeviceDispense DeviceMetric DeviceRequest DeviceUsage
    DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference EffectEvidenceSynthesis
    Encounter EncounterHistory Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare
    EventDefinition Evidence EvidenceReport EvidenceVariable ExampleScenario ExplanationOfBenefit
    FamilyMemberHistory Flag FormularyItem GenomicStudy Goal GraphDefinition Group GuidanceResponse
    HealthcareService ImagingSelection ImagingStudy Immunization ImmunizationEvaluation
    ImmunizationRecommendation ImplementationGuide Ingredient InsurancePlan InventoryItem
    InventoryReport Invoice Library Linkage List Location ManufacturedItemDefinition Measure
    MeasureReport Media Medication MedicationAdministration MedicationDispense MedicationKnowledge
    MedicationRequest MedicationStatement MedicinalProduct MedicinalProductAuthorization
    MedicinalProductContraindication MedicinalProductDefinition MedicinalProductIndication
    MedicinalProductIngredient MedicinalProductInteraction MedicinalProductManufactured
    MedicinalProductPackaged MedicinalProductPharmaceutical MedicinalProductUndesirableEffect
    MessageDefinition MessageHeader MolecularSequence NamingSystem NutritionIntake NutritionOrder
    NutritionProduct Observation ObservationDefinition OperationDefinition OperationOutcome
    Organization OrganizationAffiliation PackagedProductDefinition Parameters Patient PaymentNotice
    PaymentReconciliation Permission Person PlanDefinition Practitioner PractitionerRole Procedure
    Provenance Questionnaire QuestionnaireResponse RegulatedAuthorization RelatedPerson RequestGroup
    RequestOrchestration Requirements ResearchDefinition ResearchElementDefinition ResearchStudy
    ResearchSubject RiskAssessment RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest Slot
    Specimen SpecimenDefinition StructureDefinition StructureMap Subscription SubscriptionStatus
    SubscriptionTopic Substance SubstanceDefinition SubstanceNucleicAcid SubstancePolymer
    SubstanceProtein SubstanceReferenceInformation SubstanceSourceMaterial SubstanceSpecification
    SupplyDelivery SupplyRequest Task TerminologyCapabilities TestPlan TestReport TestScript Transport
    ValueSet VerificationResult VisionPrescription""".split()  # noqa: SIM905 - a list to read
)
