// The attributes a request says its sender dropped: an SDK over its attribute count limit (128 by
// default) drops the attributes set last, which for OpenInference's flattened `llm.input_messages.N.*`
// are the token counts and the provider, so a count here explains a model call without them.

import type { OtlpTraceRequest } from './otlp-model.js';

/** droppedAttributesCount summed over every resource, scope, span, event and link of the request. */
export function droppedAttributeCounts(request: OtlpTraceRequest): number {
  let n = 0;
  for (const rs of request.resourceSpans) {
    n += rs.resource.droppedAttributesCount;
    for (const ss of rs.scopeSpans) {
      n += ss.scope.droppedAttributesCount;
      for (const span of ss.spans) {
        n += span.droppedAttributesCount;
        for (const event of span.events) n += event.droppedAttributesCount;
        for (const link of span.links) n += link.droppedAttributesCount;
      }
    }
  }
  return n;
}
