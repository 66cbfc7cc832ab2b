/**
 * Hands a core-rest-pipeline `HttpClient` to @azure/storage-blob.
 *
 * storage-blob's `httpClient` option takes the older `RequestPolicy` shape (WebResourceLike in,
 * CompatResponse out) and converts it back with `convertHttpClient`. This adapter is the other
 * half: it turns the WebResourceLike into a PipelineRequest for the wrapped client and answers
 * with a CompatResponse whose `request` is the WebResourceLike it got, so storage-blob maps the
 * response back to its own request (which its deserializer looks up).
 */
import { toHttpHeadersLike, type CompatResponse, type RequestPolicy, type WebResourceLike } from '@azure/core-http-compat';
import { createHttpHeaders, createPipelineRequest, type FormDataMap, type HttpClient, type PipelineRequest, type RequestBodyType } from '@azure/core-rest-pipeline';

/** The options of a request as storage-blob hands them over; every field maps one to one. */
function toPipelineRequest(resource: WebResourceLike): PipelineRequest {
  const request = createPipelineRequest({
    url: resource.url,
    method: resource.method,
    headers: createHttpHeaders(resource.headers.toJson({ preserveCase: true })),
    withCredentials: resource.withCredentials,
    timeout: resource.timeout,
    requestId: resource.requestId,
    ...(resource.abortSignal === undefined ? {} : { abortSignal: resource.abortSignal }),
    // WebResourceLike types both as `any`; storage-blob fills them from a PipelineRequest.
    ...(resource.body === undefined ? {} : { body: resource.body as RequestBodyType }),
    ...(resource.formData === undefined ? {} : { formData: resource.formData as FormDataMap }),
    // core-http-compat stores the request's disableKeepAlive in `keepAlive` (sic); read it back the same way.
    disableKeepAlive: resource.keepAlive === true,
    ...(resource.onDownloadProgress === undefined ? {} : { onDownloadProgress: resource.onDownloadProgress }),
    ...(resource.onUploadProgress === undefined ? {} : { onUploadProgress: resource.onUploadProgress }),
    ...(resource.proxySettings === undefined ? {} : { proxySettings: resource.proxySettings }),
    ...(resource.streamResponseStatusCodes === undefined ? {} : { streamResponseStatusCodes: resource.streamResponseStatusCodes }),
    ...(resource.requestOverrides === undefined ? {} : { requestOverrides: resource.requestOverrides }),
  });
  // The CA agent set by the pipeline's agent policy; the default HttpClient sends with it.
  // createPipelineRequest takes no agent option, so it is set afterwards.
  if (resource.agent !== undefined) request.agent = resource.agent;
  return request;
}

/**
 * Wraps an `HttpClient` for storage-blob's `httpClient` option (StoragePipelineOptions). Every
 * client derived from the service client (container, blob) shares the one instance.
 */
export function storageHttpClient(client: HttpClient): RequestPolicy {
  return {
    async sendRequest(resource: WebResourceLike): Promise<CompatResponse> {
      const response = await client.sendRequest(toPipelineRequest(resource));
      return { ...response, request: resource, headers: toHttpHeadersLike(response.headers) };
    },
  };
}
