"""The FHIR resources this adapter reads, and how their references are written.

One table, :data:`TYPES`, says for each resource type we use which element names its patient,
whether it is found by a search on that patient (rather than by a reference to it), and in
which order a loader must send it to a server with referential integrity. Every other list of
types in the package is derived from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

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
    ResourceType("Practitioner"),
    ResourceType("PractitionerRole"),
    ResourceType("Patient"),
    ResourceType("Medication"),
    ResourceType("Coverage", "beneficiary", found_by_patient=True),
    ResourceType("Consent", "patient", found_by_patient=True),
    ResourceType("Encounter", "subject"),
    ResourceType("Condition", "subject"),
    ResourceType("ChargeItem", "subject", found_by_patient=True),
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

    Contained (``#x``), ``urn:`` and malformed references give None.
    """
    if not reference or not isinstance(reference, str):
        return None
    return _split_text(reference)


@lru_cache(maxsize=8192)  # a patient's administrations name the same encounter, performer, clinic
def _split_text(reference: str) -> tuple[str, str] | None:
    if "?" not in reference:  # the usual "Type/id" without building lists
        rtype, _, rid = reference.partition("/")
        if (
            rid and "/" not in rid and rtype[:1].isupper()
        ):  # an upper-case start is neither "#" nor "urn:"
            return rtype, rid
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
