package local.fhirinjection.hapi;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.jpa.entity.Search;
import ca.uhn.fhir.jpa.searchparam.SearchParameterMap;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.InvalidRequestException;
import ca.uhn.fhir.rest.server.servlet.ServletRequestDetails;
import ca.uhn.fhir.rest.server.util.ICachedSearchDetails;
import jakarta.servlet.http.HttpServletRequest;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Vendor profiles: the documented read restrictions of the EHRs our users run, reproduced on this
 * HAPI server so the adapter's pulls can be tested against them (see tests/hapi/README.md).
 *
 * <p>A request's profile comes from its path: {@code /oracle/fhir/...} is Oracle Health (Cerner)
 * Millennium R4, {@code /epic/fhir/...} is Epic, and {@code /fhir/...} is whatever {@code HAPI_PROFILE}
 * ({@code -Dhapi.profile}) names, by default none: the plain server, unchanged. All three serve the same
 * database, so one server start serves every profile.
 *
 * <p>This class holds the search rules (an interceptor on every JPA search, so a search inside a
 * batch Bundle is held to them too); {@link VendorProfileFilter} holds the Bulk Data and download rules.
 */
enum VendorProfile {
	NONE,
	ORACLE,
	EPIC;

	/** The profile the plain {@code /fhir} path runs (HAPI_PROFILE / -Dhapi.profile; empty: none). */
	static VendorProfile forPlainPath() {
		String name = HapiTestServer.setting("hapi.profile", "HAPI_PROFILE", "none").toLowerCase(Locale.ROOT);
		return switch (name) {
			case "oracle" -> ORACLE;
			case "epic" -> EPIC;
			case "none", "" -> NONE;
			default -> throw new IllegalArgumentException("HAPI_PROFILE must be oracle, epic or none, not " + name);
		};
	}

	/** The profile a request runs under, from its path; NONE for requests that did not come over HTTP. */
	static VendorProfile of(HttpServletRequest theRequest) {
		if (theRequest == null) {
			return NONE;
		}
		String path = theRequest.getRequestURI();
		if (path.startsWith("/oracle/")) {
			return ORACLE;
		}
		if (path.startsWith("/epic/")) {
			return EPIC;
		}
		if (path.startsWith("/fhir/") || path.equals("/fhir")) {
			return PLAIN;
		}
		return NONE;
	}

	private static final VendorProfile PLAIN = forPlainPath();

	/**
	 * Search parameters at least one of which a search of the type must carry (population searches
	 * refused), per profile.
	 *
	 * <p>Oracle: MedicationAdministration needs {@code patient} or {@code _id}
	 * (fhir.cerner.com/millennium/r4/clinical/medications/medication-administration; Oracle's R4 API
	 * op-medicationadministration-get); Encounter needs {@code _id}, {@code patient}, {@code subject},
	 * {@code account} or {@code identifier} (docs.oracle.com ... mfrap/op-encounter-get.html); Patient
	 * needs an id, identifier or demographic parameter (mfrap/op-patient-get.html).
	 *
	 * <p>Epic: administrations are read per patient (real-world.md: no population search of
	 * MedicationAdministration); the same MedicationAdministration rule is applied, nothing else.
	 */
	Map<String, Set<String>> requiredSearchParams() {
		return switch (this) {
			case ORACLE -> Map.of(
					"MedicationAdministration", Set.of("patient", "_id"),
					"Encounter", Set.of("_id", "patient", "subject", "account", "identifier"),
					"Patient", Set.of("_id", "identifier", "name", "family", "given", "birthdate", "phone",
							"email", "address-postalcode"));
			case EPIC -> Map.of("MedicationAdministration", Set.of("patient", "_id"));
			case NONE -> Map.of();
		};
	}

	/** Resource types a Bulk Data export of this profile never contains. */
	List<String> typesNotExported() {
		return this == NONE ? List.of() : List.of("MedicationAdministration");
	}

	/** The interceptor that refuses the searches a profile does not allow (400 + OperationOutcome). */
	@Interceptor
	static final class SearchRules {
		@Hook(Pointcut.STORAGE_PRESEARCH_REGISTERED)
		public void checkSearch(
				ICachedSearchDetails theSearch,
				RequestDetails theRequestDetails,
				ServletRequestDetails theServletRequestDetails,
				SearchParameterMap theParams) {
			if (theServletRequestDetails == null) {
				return; // the server's own searches (bulk export jobs, ...): no vendor rules
			}
			VendorProfile profile = of(theServletRequestDetails.getServletRequest());
			if (profile == NONE) {
				return;
			}
			String type = theSearch instanceof Search search ? search.getResourceType() : null;
			if (type == null && theRequestDetails != null) {
				type = theRequestDetails.getResourceName();
			}
			if (type == null) {
				return;
			}
			Set<String> needed = profile.requiredSearchParams().get(type);
			if (needed == null) {
				return;
			}
			for (String name : needed) {
				if (theParams.containsKey(name)) {
					return;
				}
			}
			throw new InvalidRequestException(type + " search requires one of the parameters "
					+ String.join(", ", needed.stream().sorted().toList()) + " (" + profile.name().toLowerCase(Locale.ROOT)
					+ " profile: no population search)");
		}
	}
}
