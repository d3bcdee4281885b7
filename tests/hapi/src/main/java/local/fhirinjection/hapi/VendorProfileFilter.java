package local.fhirinjection.hapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.web.util.ContentCachingResponseWrapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Bulk Data and download rules of the vendor profiles (see {@link VendorProfile}), as a servlet
 * filter in front of the FHIR servlet:
 *
 * <ul>
 *   <li>Oracle and Epic: {@code $export} only at Group level (system and Patient level: 400); the
 *       manifest never lists MedicationAdministration (its outputs are dropped from the manifest);</li>
 *   <li>Oracle: one export at a time (a kick-off while an earlier export of the profile is still in
 *       progress: 429 with Retry-After and an OperationOutcome);</li>
 *   <li>Epic: a Group is exported at most once in 24 hours (a second kick-off for the same group:
 *       429 with Retry-After and an OperationOutcome);</li>
 *   <li>Oracle and Epic: export files ({@code GET .../Binary/<id>}) answer 307 to the same file on the
 *       files port ({@code HAPI_FILES_PORT}, default the FHIR port + 1000), which stands for the
 *       object store's pre-signed URL and refuses a request carrying an Authorization header (403).</li>
 * </ul>
 */
final class VendorProfileFilter implements Filter {

	private static final Logger ourLog = LoggerFactory.getLogger(VendorProfileFilter.class);
	private static final ObjectMapper JSON = new ObjectMapper();
	private static final Pattern BINARY = Pattern.compile("^/(oracle|epic|fhir)/(?:fhir/)?Binary/([A-Za-z0-9\\-.]{1,64})$");
	private static final Pattern FILE = Pattern.compile("^/files/(oracle|epic|fhir)/Binary/([A-Za-z0-9\\-.]{1,64})$");
	private static final Pattern GROUP_EXPORT = Pattern.compile("/Group/([A-Za-z0-9\\-.]{1,64})/\\$export$");
	static final long EPIC_GROUP_INTERVAL_SECONDS = 24 * 3600;
	static final int ORACLE_RETRY_AFTER_SECONDS = 10;

	/** Marks the filter's own loopback requests (a random value known only to this process). */
	private final String mySecret = UUID.randomUUID().toString();
	private final String myInternalHeader = "X-Test-Server-Internal";
	private final int myPort;
	private final int myFilesPort;
	private final HttpClient myHttp = HttpClient.newBuilder()
			.connectTimeout(Duration.ofSeconds(10))
			.followRedirects(HttpClient.Redirect.NEVER)
			.build();

	// the Oracle profile's export in progress (its status URL), and Epic's last export of each group
	private final Map<VendorProfile, String> myActiveExport = new HashMap<>();
	private final Map<String, Instant> myEpicGroupExports = new HashMap<>();

	VendorProfileFilter(int thePort, int theFilesPort) {
		myPort = thePort;
		myFilesPort = theFilesPort;
	}

	@Override
	public void doFilter(ServletRequest theRequest, ServletResponse theResponse, FilterChain theChain)
			throws IOException, ServletException {
		HttpServletRequest request = (HttpServletRequest) theRequest;
		HttpServletResponse response = (HttpServletResponse) theResponse;
		if (request.getLocalPort() == myFilesPort) {
			if (request.getRequestURI().startsWith("/files/")) {
				theChain.doFilter(request, response); // to filesServlet(), which calls serveFile
			} else {
				response.sendError(404);
			}
			return;
		}
		VendorProfile profile = VendorProfile.of(request);
		if (profile == VendorProfile.NONE || mySecret.equals(request.getHeader(myInternalHeader))) {
			theChain.doFilter(request, response);
			return;
		}
		String path = request.getRequestURI();
		String method = request.getMethod().toUpperCase(Locale.ROOT);
		Matcher binary = BINARY.matcher(path);
		if (method.equals("GET") && binary.matches()) {
			// the object store's pre-signed URL, on another port: no Authorization header may go there
			String where = "http://127.0.0.1:" + myFilesPort + "/files/" + binary.group(1) + "/Binary/" + binary.group(2);
			response.setStatus(307);
			response.setHeader("Location", where);
			return;
		}
		if (path.endsWith("/$export") && (method.equals("GET") || method.equals("POST"))) {
			kickOff(profile, request, response, theChain, path);
			return;
		}
		if (path.endsWith("/$export-poll-status")) {
			pollStatus(profile, request, response, theChain, method);
			return;
		}
		theChain.doFilter(request, response);
	}

	private void kickOff(VendorProfile theProfile, HttpServletRequest theRequest, HttpServletResponse theResponse,
			FilterChain theChain, String thePath) throws IOException, ServletException {
		Matcher group = GROUP_EXPORT.matcher(thePath);
		if (!group.find()) {
			outcome(theResponse, 400, "not-supported", theProfile.name().toLowerCase(Locale.ROOT)
					+ " profile: only Group-level $export is supported (Group/[id]/$export)", null);
			return;
		}
		String groupKey = theProfile + "/" + group.group(1);
		synchronized (this) {
			if (theProfile == VendorProfile.ORACLE && exportInProgress(theProfile)) {
				outcome(theResponse, 429, "throttled", "oracle profile: an export is already in progress for this"
						+ " client; wait for it to complete (or DELETE it) before starting another",
						ORACLE_RETRY_AFTER_SECONDS);
				return;
			}
			Instant last = myEpicGroupExports.get(groupKey);
			if (theProfile == VendorProfile.EPIC && last != null) {
				long left = EPIC_GROUP_INTERVAL_SECONDS - Duration.between(last, Instant.now()).getSeconds();
				if (left > 0) {
					outcome(theResponse, 429, "throttled", "epic profile: Group/" + group.group(1)
							+ " was exported less than 24 hours ago; a group can be exported once a day", (int) left);
					return;
				}
			}
		}
		theChain.doFilter(theRequest, theResponse);
		String status = theResponse.getHeader("Content-Location");
		if (theResponse.getStatus() == 202 && status != null) {
			synchronized (this) {
				myActiveExport.put(theProfile, status);
				if (theProfile == VendorProfile.EPIC) {
					myEpicGroupExports.put(groupKey, Instant.now());
				}
			}
		}
	}

	/** Is the profile's last export still running? Asked of HAPI itself (202 = in progress). */
	private boolean exportInProgress(VendorProfile theProfile) {
		String status = myActiveExport.get(theProfile);
		if (status == null) {
			return false;
		}
		try {
			URI uri = URI.create(status);
			URI local = new URI("http", null, "127.0.0.1", myPort, uri.getPath(), uri.getQuery(), null);
			HttpResponse<Void> answer = myHttp.send(
					HttpRequest.newBuilder(local).header(myInternalHeader, mySecret).GET().build(),
					HttpResponse.BodyHandlers.discarding());
			if (answer.statusCode() == 202) {
				return true;
			}
		} catch (IOException | InterruptedException | IllegalArgumentException | java.net.URISyntaxException e) {
			ourLog.warn("could not ask the status of the last export: {}", e.toString());
		}
		myActiveExport.remove(theProfile);
		return false;
	}

	private void pollStatus(VendorProfile theProfile, HttpServletRequest theRequest, HttpServletResponse theResponse,
			FilterChain theChain, String theMethod) throws IOException, ServletException {
		if (!theMethod.equals("GET")) {
			theChain.doFilter(theRequest, theResponse);
			if (theMethod.equals("DELETE") && theResponse.getStatus() < 300) {
				synchronized (this) {
					myActiveExport.remove(theProfile); // a cancelled or finished-and-deleted export
				}
			}
			return;
		}
		ContentCachingResponseWrapper wrapper = new ContentCachingResponseWrapper(theResponse);
		theChain.doFilter(theRequest, wrapper);
		byte[] body = wrapper.getContentAsByteArray();
		if (wrapper.getStatus() != 200 || body.length == 0) {
			wrapper.copyBodyToResponse();
			return;
		}
		JsonNode manifest;
		try {
			manifest = JSON.readTree(body);
		} catch (IOException e) {
			wrapper.copyBodyToResponse();
			return;
		}
		if (manifest instanceof ObjectNode object && object.get("output") instanceof ArrayNode outputs) {
			ArrayNode kept = JSON.createArrayNode();
			for (JsonNode output : outputs) {
				String type = output.path("type").asText("");
				if (!theProfile.typesNotExported().contains(type)) {
					kept.add(output);
				}
			}
			object.set("output", kept);
			body = JSON.writeValueAsBytes(object);
		}
		wrapper.resetBuffer();
		theResponse.setContentLength(body.length);
		try (OutputStream out = theResponse.getOutputStream()) {
			out.write(body);
		}
	}

	/** The servlet at /files/* (a path needs a servlet for Tomcat to run the filters at all). */
	jakarta.servlet.http.HttpServlet filesServlet() {
		return new jakarta.servlet.http.HttpServlet() {
			@Override
			protected void service(HttpServletRequest theRequest, HttpServletResponse theResponse) throws IOException {
				if (theRequest.getLocalPort() != myFilesPort) {
					theResponse.sendError(404);
					return;
				}
				serveFile(theRequest, theResponse);
			}
		};
	}

	/** The files port: the stand-in for the object store's pre-signed URLs. */
	private void serveFile(HttpServletRequest theRequest, HttpServletResponse theResponse) throws IOException {
		Matcher file = FILE.matcher(theRequest.getRequestURI());
		if (!file.matches() || !theRequest.getMethod().equalsIgnoreCase("GET")) {
			theResponse.sendError(404);
			return;
		}
		if (theRequest.getHeader("Authorization") != null) {
			// a pre-signed URL carries its own credentials; S3-style stores refuse a second mechanism
			theResponse.setStatus(403);
			theResponse.setContentType("text/plain");
			theResponse.getWriter().write("Forbidden: this pre-signed URL must be fetched without an Authorization header\n");
			return;
		}
		URI source = URI.create("http://127.0.0.1:" + myPort + "/fhir/Binary/" + file.group(2));
		try {
			HttpResponse<InputStream> answer = myHttp.send(HttpRequest.newBuilder(source)
							.header(myInternalHeader, mySecret)
							.header("Accept", "application/fhir+ndjson")
							.GET().build(),
					HttpResponse.BodyHandlers.ofInputStream());
			theResponse.setStatus(answer.statusCode());
			theResponse.setContentType(answer.headers().firstValue("Content-Type").orElse("application/fhir+ndjson"));
			try (InputStream in = answer.body(); OutputStream out = theResponse.getOutputStream()) {
				in.transferTo(out);
			}
		} catch (InterruptedException e) {
			Thread.currentThread().interrupt();
			theResponse.sendError(503);
		}
	}

	private static void outcome(HttpServletResponse theResponse, int theStatus, String theCode, String theText,
			Integer theRetryAfter) throws IOException {
		theResponse.setStatus(theStatus);
		if (theRetryAfter != null) {
			theResponse.setHeader("Retry-After", String.valueOf(theRetryAfter));
		}
		theResponse.setContentType("application/fhir+json");
		ObjectNode body = JSON.createObjectNode();
		body.put("resourceType", "OperationOutcome");
		ObjectNode issue = body.putArray("issue").addObject();
		issue.put("severity", "error");
		issue.put("code", theCode);
		issue.put("diagnostics", theText);
		byte[] bytes = JSON.writeValueAsBytes(body);
		theResponse.setContentLength(bytes.length);
		try (OutputStream out = theResponse.getOutputStream()) {
			out.write(bytes);
		}
		ourLog.info("vendor profile refused a request: HTTP {} {}", theStatus, theCode);
	}
}
