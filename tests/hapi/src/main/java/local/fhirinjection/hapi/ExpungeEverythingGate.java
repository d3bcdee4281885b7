package local.fhirinjection.hapi;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;

/**
 * HAPI refuses {@code $expunge} with {@code expungeEverything=true} unless "allow multiple delete" is
 * on (HAPI-2081), but we want multiple delete OFF for normal traffic (a conditional DELETE matching
 * several resources must stay a 412, as on a default server). This gate allows multiple delete
 * only on the thread that is serving a server-level {@code POST [base]/$expunge} request, so tests
 * can reset the database while every other request sees the configured value.
 */
final class ExpungeEverythingGate {

	private static final ThreadLocal<Boolean> ourInSystemExpunge = ThreadLocal.withInitial(() -> Boolean.FALSE);

	private ExpungeEverythingGate() {}

	/** Storage settings whose "allow multiple delete" is also true inside a system-level $expunge. */
	static final class Settings extends JpaStorageSettings {
		@Override
		public boolean isAllowMultipleDelete() {
			return super.isAllowMultipleDelete() || ourInSystemExpunge.get();
		}
	}

	/** Marks the request thread while a system-level $expunge is being handled. */
	@Interceptor
	static final class RequestHook {
		@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED)
		public void beforeHandling(RequestDetails theRequest, RestOperationTypeEnum theOperation) {
			// set on every request, so a value can never leak from one request to the next
			ourInSystemExpunge.set(theOperation == RestOperationTypeEnum.EXTENDED_OPERATION_SERVER
					&& "$expunge".equals(theRequest.getOperation()));
		}

		@Hook(Pointcut.SERVER_PROCESSING_COMPLETED)
		public void afterProcessing(RequestDetails theRequest) {
			ourInSystemExpunge.remove();
		}
	}
}
