// Request bodies in Kubernetes' protobuf encoding. kubectl's typed clients (`kubectl create
// namespace`, `kubectl create service`) send `application/vnd.kubernetes.protobuf` and have no
// JSON fallback on 415; they accept JSON answers. The wire format: the magic "k8s\0", then a
// runtime.Unknown whose typeMeta names the kind and whose raw bytes are the object. Decoding
// is protobufjs over the messages below: the subset of k8s.io/api's generated.proto (same
// field numbers) for the kinds kubectl creates with a typed client among those served here.
import protobuf from "protobufjs";
import type { Obj } from "./kinds.ts";

export const PROTOBUF = "application/vnd.kubernetes.protobuf";

const SCHEMA = `
syntax = "proto2";
package k8s;
message TypeMeta { optional string apiVersion = 1; optional string kind = 2; }
message Unknown { optional TypeMeta typeMeta = 1; optional bytes raw = 2; optional string contentEncoding = 3; optional string contentType = 4; }
message Time { optional int64 seconds = 1; optional int32 nanos = 2; }
message IntOrString { optional int64 type = 1; optional int32 intVal = 2; optional string strVal = 3; }
message OwnerReference { optional string apiVersion = 5; optional string kind = 1; optional string name = 3; optional string uid = 4; optional bool controller = 6; optional bool blockOwnerDeletion = 7; }
message ObjectMeta {
  optional string name = 1; optional string generateName = 2; optional string namespace = 3; optional string selfLink = 4;
  optional string uid = 5; optional string resourceVersion = 6; optional int64 generation = 7; optional Time creationTimestamp = 8;
  optional Time deletionTimestamp = 9; optional int64 deletionGracePeriodSeconds = 10; map<string, string> labels = 11;
  map<string, string> annotations = 12; repeated OwnerReference ownerReferences = 13; repeated string finalizers = 14;
}
message NamespaceSpec { repeated string finalizers = 1; }
message NamespaceStatus { optional string phase = 1; }
message Namespace { optional ObjectMeta metadata = 1; optional NamespaceSpec spec = 2; optional NamespaceStatus status = 3; }
message ServicePort { optional string name = 1; optional string protocol = 2; optional string appProtocol = 6; optional int32 port = 3; optional IntOrString targetPort = 4; optional int32 nodePort = 5; }
message ClientIPConfig { optional int32 timeoutSeconds = 1; }
message SessionAffinityConfig { optional ClientIPConfig clientIP = 1; }
message ServiceSpec {
  repeated ServicePort ports = 1; map<string, string> selector = 2; optional string clusterIP = 3; repeated string clusterIPs = 18;
  optional string type = 4; repeated string externalIPs = 5; optional string sessionAffinity = 7; optional string loadBalancerIP = 8;
  repeated string loadBalancerSourceRanges = 9; optional string externalName = 10; optional string externalTrafficPolicy = 11;
  optional int32 healthCheckNodePort = 12; optional bool publishNotReadyAddresses = 13; optional SessionAffinityConfig sessionAffinityConfig = 14;
  repeated string ipFamilies = 19; optional string ipFamilyPolicy = 17; optional bool allocateLoadBalancerNodePorts = 20;
  optional string loadBalancerClass = 21; optional string internalTrafficPolicy = 22; optional string trafficDistribution = 23;
}
message Service { optional ObjectMeta metadata = 1; optional ServiceSpec spec = 2; }
`;

const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
const type = (name: string) => root.lookupType(`k8s.${name}`);
const UNKNOWN = type("Unknown");
/** kind -> its message, for the kinds decoded (apiVersion v1 both). */
const MESSAGES: Record<string, protobuf.Type> = { Namespace: type("Namespace"), Service: type("Service") };
const MAGIC = [0x6b, 0x38, 0x73, 0x00];

/** Go pointer fields (nil is absent, false or 0 is a value); every other zero value is omitempty in JSON. */
const POINTERS = new Set(["allocateLoadBalancerNodePorts", "controller", "blockOwnerDeletion", "timeoutSeconds"]);

export class ProtobufError extends Error {}

const isMap = (v: unknown): v is Record<string, any> => v !== null && typeof v === "object" && !Array.isArray(v);

/** The JSON form Go's encoding/json gives the same Go value: times as RFC 3339, int-or-string as either, zero values left out. */
function toJson(v: any, field = ""): any {
  if (Array.isArray(v)) {
    const out = v.map((x) => toJson(x)).filter((x) => x !== undefined);
    return out.length ? out : undefined;
  }
  if (isMap(v)) {
    if (field.endsWith("Timestamp")) return v.seconds ? new Date(Number(v.seconds) * 1000).toISOString().replace(/\.\d+Z$/, "Z") : undefined;
    if (field === "targetPort") return v.type ? v.strVal : v.intVal;
    const out: Record<string, any> = {};
    for (const [k, x] of Object.entries(v)) {
      const j = POINTERS.has(k) ? x : toJson(x, k);
      if (j !== undefined) out[k] = j;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return v === "" || v === 0 || v === false ? undefined : v;
}

/** A protobuf request body as the JSON object it encodes; ProtobufError when it is not one of the kinds decoded. */
export function decodeProtobuf(body: Uint8Array): Obj {
  if (body.length < 4 || MAGIC.some((b, i) => body[i] !== b)) throw new ProtobufError("the body does not start with the protobuf magic number");
  let env: any;
  let obj: any;
  const kind = () => env.typeMeta?.kind ?? "";
  try {
    env = UNKNOWN.toObject(UNKNOWN.decode(body.subarray(4)), { bytes: Array });
    const msg = MESSAGES[kind()];
    if (!msg) throw new ProtobufError(`the lab API server decodes protobuf for ${Object.keys(MESSAGES).join(" and ")} only, not ${kind() || "this object"}: send application/json`);
    obj = msg.toObject(msg.decode(Uint8Array.from(env.raw ?? [])), { longs: Number });
  } catch (e) {
    if (e instanceof ProtobufError) throw e;
    throw new ProtobufError(`the protobuf body cannot be decoded: ${(e as Error).message}`);
  }
  return { apiVersion: env.typeMeta.apiVersion, kind: kind(), ...toJson(obj) };
}
