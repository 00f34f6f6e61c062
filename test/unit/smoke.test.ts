import { describe, expect, it } from "vitest";
import { ApiError, notFound } from "../../workers/shared/errors.ts";

describe("errors", () => {
  it("renders NotFound as a Status", () => {
    const e = notFound({ group: "", resource: "pods", name: "web" });
    expect(e).toBeInstanceOf(ApiError);
    expect(e.toStatus()).toMatchObject({ kind: "Status", code: 404, reason: "NotFound", message: 'pods "web" not found' });
  });
});
