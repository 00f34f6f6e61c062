// Decoding of Kubernetes protobuf request bodies (workers/api/protobuf.ts).
//
// The KUBECTL fixtures are real request bodies captured from kubectl v1.32 (each body is
// exactly what kubectl POSTed/DELETEd, base64-encoded); `want` is the JSON the same command
// prints with `--dry-run=client -o json` (the object it would send as JSON) where kubectl
// has that flag, else the encoding/json form of the object it sends. bin.dat holds the
// bytes 00 01 fe ff 68 69.

import { describe, expect, it } from "vitest";
import { decodeProtobufObject, PROTOBUF_CONTENT_TYPE } from "../../workers/api/protobuf.ts";
import { ApiError } from "../../workers/shared/errors.ts";

interface Fixture {
  command: string;
  request: string;
  body: string;
  want: Record<string, unknown>;
}

const KUBECTL: Fixture[] = [
  {
    command: "kubectl create namespace n1",
    request: "POST /api/v1/namespaces",
    body: "azhzAAoPCgJ2MRIJTmFtZXNwYWNlEhoKEgoCbjESABoAIgAqADIAOABCABIAGgIKABoAIgA=",
    want: { kind: "Namespace", apiVersion: "v1", metadata: { name: "n1", creationTimestamp: null }, spec: {}, status: {} },
  },
  {
    command: "kubectl create configmap c1 --from-literal=a=b --from-literal=multi=$'line1\\nline2' --from-file=bin=bin.dat",
    request: "POST /api/v1/namespaces/default/configmaps",
    body: "azhzAAoPCgJ2MRIJQ29uZmlnTWFwEkEKEgoCYzESABoAIgAqADIAOABCABIGCgFhEgFiEhQKBW11bHRpEgtsaW5lMQpsaW5lMhoNCgNiaW4SBgAB/v9oaRoAIgA=",
    want: {
      kind: "ConfigMap",
      apiVersion: "v1",
      metadata: { name: "c1", creationTimestamp: null },
      data: { a: "b", multi: "line1\nline2" },
      binaryData: { bin: "AAH+/2hp" },
    },
  },
  {
    command: "kubectl create secret generic s1 --from-literal=p=q --from-file=bin=bin.dat",
    request: "POST /api/v1/namespaces/default/secrets",
    body: "azhzAAoMCgJ2MRIGU2VjcmV0Ei0KEgoCczESABoAIgAqADIAOABCABINCgNiaW4SBgAB/v9oaRIGCgFwEgFxGgAaACIA",
    want: { kind: "Secret", apiVersion: "v1", metadata: { name: "s1", creationTimestamp: null }, data: { bin: "AAH+/2hp", p: "cQ==" } },
  },
  {
    command: "kubectl create secret docker-registry reg --docker-server=r.example.com --docker-username=u --docker-password=p",
    request: "POST /api/v1/namespaces/default/secrets",
    body: "azhzAAoMCgJ2MRIGU2VjcmV0EpUBChMKA3JlZxIAGgAiACoAMgA4AEIAEl4KES5kb2NrZXJjb25maWdqc29uEkl7ImF1dGhzIjp7InIuZXhhbXBsZS5jb20iOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX19Gh5rdWJlcm5ldGVzLmlvL2RvY2tlcmNvbmZpZ2pzb24aACIA",
    want: {
      kind: "Secret",
      apiVersion: "v1",
      metadata: { name: "reg", creationTimestamp: null },
      data: { ".dockerconfigjson": "eyJhdXRocyI6eyJyLmV4YW1wbGUuY29tIjp7InVzZXJuYW1lIjoidSIsInBhc3N3b3JkIjoicCIsImF1dGgiOiJkVHB3In19fQ==" },
      type: "kubernetes.io/dockerconfigjson",
    },
  },
  {
    command: "kubectl create serviceaccount sa1",
    request: "POST /api/v1/namespaces/default/serviceaccounts",
    body: "azhzAAoUCgJ2MRIOU2VydmljZUFjY291bnQSFQoTCgNzYTESABoAIgAqADIAOABCABoAIgA=",
    want: { kind: "ServiceAccount", apiVersion: "v1", metadata: { name: "sa1", creationTimestamp: null } },
  },
  {
    command: "kubectl create service clusterip svc1 --tcp=80:8080",
    request: "POST /api/v1/namespaces/default/services",
    body: "azhzAAoNCgJ2MRIHU2VydmljZRJsCiEKBHN2YzESABoAIgAqADIAOABCAFoLCgNhcHASBHN2YzESQwobCgc4MC04MDgwEgNUQ1AYUCIHCAAQkD8aACgAEgsKA2FwcBIEc3ZjMRoAIglDbHVzdGVySVA6AEIAUgBaAGAAaAAaAgoAGgAiAA==",
    want: {
      kind: "Service",
      apiVersion: "v1",
      metadata: { name: "svc1", creationTimestamp: null, labels: { app: "svc1" } },
      spec: { ports: [{ name: "80-8080", protocol: "TCP", port: 80, targetPort: 8080 }], selector: { app: "svc1" }, type: "ClusterIP" },
      status: { loadBalancer: {} },
    },
  },
  {
    command: "kubectl create service clusterip hl1 --clusterip=None",
    request: "POST /api/v1/namespaces/default/services",
    body: "azhzAAoNCgJ2MRIHU2VydmljZRJQCh8KA2hsMRIAGgAiACoAMgA4AEIAWgoKA2FwcBIDaGwxEikSCgoDYXBwEgNobDEaBE5vbmUiCUNsdXN0ZXJJUDoAQgBSAFoAYABoABoCCgAaACIA",
    want: {
      kind: "Service",
      apiVersion: "v1",
      metadata: { name: "hl1", creationTimestamp: null, labels: { app: "hl1" } },
      spec: { selector: { app: "hl1" }, clusterIP: "None", type: "ClusterIP" },
      status: { loadBalancer: {} },
    },
  },
  {
    command: "kubectl create service nodeport np1 --tcp=8080:80 --node-port=30080",
    request: "POST /api/v1/namespaces/default/services",
    body: "azhzAAoNCgJ2MRIHU2VydmljZRJqCh8KA25wMRIAGgAiACoAMgA4AEIAWgoKA2FwcBIDbnAxEkMKHQoHODA4MC04MBIDVENQGJA/IgYIABBQGgAogOsBEgoKA2FwcBIDbnAxGgAiCE5vZGVQb3J0OgBCAFIAWgBgAGgAGgIKABoAIgA=",
    want: {
      kind: "Service",
      apiVersion: "v1",
      metadata: { name: "np1", creationTimestamp: null, labels: { app: "np1" } },
      spec: {
        ports: [{ name: "8080-80", protocol: "TCP", port: 8080, targetPort: 80, nodePort: 30080 }],
        selector: { app: "np1" },
        type: "NodePort",
      },
      status: { loadBalancer: {} },
    },
  },
  {
    command: "kubectl create service loadbalancer lb1 --tcp=443:https",
    request: "POST /api/v1/namespaces/default/services",
    body: "azhzAAoNCgJ2MRIHU2VydmljZRJzCh8KA2xiMRIAGgAiACoAMgA4AEIAWgoKA2FwcBIDbGIxEkwKIgoJNDQzLWh0dHBzEgNUQ1AYuwMiCwgBEAAaBWh0dHBzKAASCgoDYXBwEgNsYjEaACIMTG9hZEJhbGFuY2VyOgBCAFIAWgBgAGgAGgIKABoAIgA=",
    want: {
      kind: "Service",
      apiVersion: "v1",
      metadata: { name: "lb1", creationTimestamp: null, labels: { app: "lb1" } },
      spec: {
        ports: [{ name: "443-https", protocol: "TCP", port: 443, targetPort: "https" }],
        selector: { app: "lb1" },
        type: "LoadBalancer",
      },
      status: { loadBalancer: {} },
    },
  },
  {
    command: "kubectl create service externalname en1 --external-name=example.com",
    request: "POST /api/v1/namespaces/default/services",
    body: "azhzAAoNCgJ2MRIHU2VydmljZRJaCh8KA2VuMRIAGgAiACoAMgA4AEIAWgoKA2FwcBIDZW4xEjMSCgoDYXBwEgNlbjEaACIMRXh0ZXJuYWxOYW1lOgBCAFILZXhhbXBsZS5jb21aAGAAaAAaAgoAGgAiAA==",
    want: {
      kind: "Service",
      apiVersion: "v1",
      metadata: { name: "en1", creationTimestamp: null, labels: { app: "en1" } },
      spec: { selector: { app: "en1" }, type: "ExternalName", externalName: "example.com" },
      status: { loadBalancer: {} },
    },
  },
  {
    command: "kubectl create deployment web --image=nginx:1.27 --replicas=2 --port=80",
    request: "POST /apis/apps/v1/namespaces/default/deployments",
    body: "azhzAAoVCgdhcHBzL3YxEgpEZXBsb3ltZW50Er0BCh8KA3dlYhIAGgAiACoAMgA4AEIAWgoKA2FwcBIDd2ViEosBCAISDAoKCgNhcHASA3dlYhpxChwKABIAGgAiACoAMgA4AEIAWgoKA2FwcBIDd2ViElESMwoFbmdpbngSCm5naW54OjEuMjcqADIKCgAQABhQIgAqAEIAagByAIABAIgBAJABAKIBABoAMgBCAEoAUgBYAGAAaACCAQCKAQCaAQDCAQAiAgoAKAA4ABoMCAAQABgAIAAoADgAGgAiAA==",
    want: {
      kind: "Deployment",
      apiVersion: "apps/v1",
      metadata: { name: "web", creationTimestamp: null, labels: { app: "web" } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { creationTimestamp: null, labels: { app: "web" } },
          spec: { containers: [{ name: "nginx", image: "nginx:1.27", ports: [{ containerPort: 80 }], resources: {} }] },
        },
        strategy: {},
      },
      status: {},
    },
  },
  {
    command: "kubectl create deployment multi --image=busybox --image=nginx:1.27",
    request: "POST /apis/apps/v1/namespaces/default/deployments",
    body: "azhzAAoVCgdhcHBzL3YxEgpEZXBsb3ltZW50EuIBCiMKBW11bHRpEgAaACIAKgAyADgAQgBaDAoDYXBwEgVtdWx0aRKsAQgBEg4KDAoDYXBwEgVtdWx0aRqPAQoeCgASABoAIgAqADIAOABCAFoMCgNhcHASBW11bHRpEm0SJgoHYnVzeWJveBIHYnVzeWJveCoAQgBqAHIAgAEAiAEAkAEAogEAEicKBW5naW54EgpuZ2lueDoxLjI3KgBCAGoAcgCAAQCIAQCQAQCiAQAaADIAQgBKAFIAWABgAGgAggEAigEAmgEAwgEAIgIKACgAOAAaDAgAEAAYACAAKAA4ABoAIgA=",
    want: {
      kind: "Deployment",
      apiVersion: "apps/v1",
      metadata: { name: "multi", creationTimestamp: null, labels: { app: "multi" } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "multi" } },
        template: {
          metadata: { creationTimestamp: null, labels: { app: "multi" } },
          spec: {
            containers: [
              { name: "busybox", image: "busybox", resources: {} },
              { name: "nginx", image: "nginx:1.27", resources: {} },
            ],
          },
        },
        strategy: {},
      },
      status: {},
    },
  },
  {
    command: "kubectl create deployment cmd --image=busybox --port=8080 -- sleep 3600",
    request: "POST /apis/apps/v1/namespaces/default/deployments",
    body: "azhzAAoVCgdhcHBzL3YxEgpEZXBsb3ltZW50EsoBCh8KA2NtZBIAGgAiACoAMgA4AEIAWgoKA2FwcBIDY21kEpgBCAESDAoKCgNhcHASA2NtZBp+ChwKABIAGgAiACoAMgA4AEIAWgoKA2FwcBIDY21kEl4SQAoHYnVzeWJveBIHYnVzeWJveBoFc2xlZXAaBDM2MDAqADILCgAQABiQPyIAKgBCAGoAcgCAAQCIAQCQAQCiAQAaADIAQgBKAFIAWABgAGgAggEAigEAmgEAwgEAIgIKACgAOAAaDAgAEAAYACAAKAA4ABoAIgA=",
    want: {
      kind: "Deployment",
      apiVersion: "apps/v1",
      metadata: { name: "cmd", creationTimestamp: null, labels: { app: "cmd" } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "cmd" } },
        template: {
          metadata: { creationTimestamp: null, labels: { app: "cmd" } },
          spec: {
            containers: [
              { name: "busybox", image: "busybox", command: ["sleep", "3600"], ports: [{ containerPort: 8080 }], resources: {} },
            ],
          },
        },
        strategy: {},
      },
      status: {},
    },
  },
  {
    command: "kubectl create role r1 --verb=get --verb=list --resource=pods --resource=deployments.apps --resource-name=x",
    request: "POST /apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
    body: "azhzAAokChxyYmFjLmF1dGhvcml6YXRpb24uazhzLmlvL3YxEgRSb2xlEk8KEgoCcjESABoAIgAqADIAOABCABIWCgNnZXQKBGxpc3QSABoEcG9kcyIBeBIhCgNnZXQKBGxpc3QSBGFwcHMaC2RlcGxveW1lbnRzIgF4GgAiAA==",
    want: {
      kind: "Role",
      apiVersion: "rbac.authorization.k8s.io/v1",
      metadata: { name: "r1", creationTimestamp: null },
      rules: [
        { verbs: ["get", "list"], apiGroups: [""], resources: ["pods"], resourceNames: ["x"] },
        { verbs: ["get", "list"], apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["x"] },
      ],
    },
  },
  {
    command: "kubectl create rolebinding rb1 --role=r1 --user=alice --group=devs --serviceaccount=default:sa1",
    request: "POST /apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
    body: "azhzAAorChxyYmFjLmF1dGhvcml6YXRpb24uazhzLmlvL3YxEgtSb2xlQmluZGluZxK2AQoTCgNyYjESABoAIgAqADIAOABCABIqCgRVc2VyEhlyYmFjLmF1dGhvcml6YXRpb24uazhzLmlvGgVhbGljZSIAEioKBUdyb3VwEhlyYmFjLmF1dGhvcml6YXRpb24uazhzLmlvGgRkZXZzIgASIAoOU2VydmljZUFjY291bnQSABoDc2ExIgdkZWZhdWx0GiUKGXJiYWMuYXV0aG9yaXphdGlvbi5rOHMuaW8SBFJvbGUaAnIxGgAiAA==",
    want: {
      kind: "RoleBinding",
      apiVersion: "rbac.authorization.k8s.io/v1",
      metadata: { name: "rb1", creationTimestamp: null },
      subjects: [
        { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "alice" },
        { kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "devs" },
        { kind: "ServiceAccount", name: "sa1", namespace: "default" },
      ],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "r1" },
    },
  },
  {
    command: "kubectl create clusterrole cr2 --verb=get --non-resource-url=/logs/*",
    request: "POST /apis/rbac.authorization.k8s.io/v1/clusterroles",
    body: "azhzAAorChxyYmFjLmF1dGhvcml6YXRpb24uazhzLmlvL3YxEgtDbHVzdGVyUm9sZRIlChMKA2NyMhIAGgAiACoAMgA4AEIAEg4KA2dldCoHL2xvZ3MvKhoAIgA=",
    want: {
      kind: "ClusterRole",
      apiVersion: "rbac.authorization.k8s.io/v1",
      metadata: { name: "cr2", creationTimestamp: null },
      rules: [{ verbs: ["get"], nonResourceURLs: ["/logs/*"] }],
    },
  },
  {
    command:
      "kubectl create clusterrole cr3 --verb=get,list,watch --resource=nodes,pods/log,deployments.apps --resource-name=a --resource-name=b",
    request: "POST /apis/rbac.authorization.k8s.io/v1/clusterroles",
    body: "azhzAAorChxyYmFjLmF1dGhvcml6YXRpb24uazhzLmlvL3YxEgtDbHVzdGVyUm9sZRJvChMKA2NyMxIAGgAiACoAMgA4AEIAEisKA2dldAoEbGlzdAoFd2F0Y2gSABoFbm9kZXMaCHBvZHMvbG9nIgFhIgFiEisKA2dldAoEbGlzdAoFd2F0Y2gSBGFwcHMaC2RlcGxveW1lbnRzIgFhIgFiGgAiAA==",
    want: {
      kind: "ClusterRole",
      apiVersion: "rbac.authorization.k8s.io/v1",
      metadata: { name: "cr3", creationTimestamp: null },
      rules: [
        { verbs: ["get", "list", "watch"], apiGroups: [""], resources: ["nodes", "pods/log"], resourceNames: ["a", "b"] },
        { verbs: ["get", "list", "watch"], apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["a", "b"] },
      ],
    },
  },
  {
    command: "kubectl create clusterrole cr1 --aggregation-rule=rbac.example.com/aggregate=true,tier=x",
    request: "POST /apis/rbac.authorization.k8s.io/v1/clusterroles",
    body: "azhzAAorChxyYmFjLmF1dGhvcml6YXRpb24uazhzLmlvL3YxEgtDbHVzdGVyUm9sZRJIChMKA2NyMRIAGgAiACoAMgA4AEIAGjEKLwoiChpyYmFjLmV4YW1wbGUuY29tL2FnZ3JlZ2F0ZRIEdHJ1ZQoJCgR0aWVyEgF4GgAiAA==",
    want: {
      kind: "ClusterRole",
      apiVersion: "rbac.authorization.k8s.io/v1",
      metadata: { name: "cr1", creationTimestamp: null },
      aggregationRule: { clusterRoleSelectors: [{ matchLabels: { "rbac.example.com/aggregate": "true", tier: "x" } }] },
    },
  },
  {
    command: "kubectl create clusterrolebinding crb1 --clusterrole=cr1 --user=bob --group=admins --serviceaccount=kube-system:default",
    request: "POST /apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    body: "azhzAAoyChxyYmFjLmF1dGhvcml6YXRpb24uazhzLmlvL3YxEhJDbHVzdGVyUm9sZUJpbmRpbmcSxwEKFAoEY3JiMRIAGgAiACoAMgA4AEIAEigKBFVzZXISGXJiYWMuYXV0aG9yaXphdGlvbi5rOHMuaW8aA2JvYiIAEiwKBUdyb3VwEhlyYmFjLmF1dGhvcml6YXRpb24uazhzLmlvGgZhZG1pbnMiABIoCg5TZXJ2aWNlQWNjb3VudBIAGgdkZWZhdWx0IgtrdWJlLXN5c3RlbRotChlyYmFjLmF1dGhvcml6YXRpb24uazhzLmlvEgtDbHVzdGVyUm9sZRoDY3IxGgAiAA==",
    want: {
      kind: "ClusterRoleBinding",
      apiVersion: "rbac.authorization.k8s.io/v1",
      metadata: { name: "crb1", creationTimestamp: null },
      subjects: [
        { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "bob" },
        { kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "admins" },
        { kind: "ServiceAccount", name: "default", namespace: "kube-system" },
      ],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cr1" },
    },
  },
  {
    command: "kubectl auth can-i list pods",
    request: "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    body: "azhzAAoyChdhdXRob3JpemF0aW9uLms4cy5pby92MRIXU2VsZlN1YmplY3RBY2Nlc3NSZXZpZXcSPQoQCgASABoAIgAqADIAOABCABIfCh0KB2RlZmF1bHQSBGxpc3QaACIAKgRwb2RzMgA6ABoICAASABoAIAAaACIA",
    want: {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SelfSubjectAccessReview",
      metadata: { creationTimestamp: null },
      spec: { resourceAttributes: { namespace: "default", verb: "list", resource: "pods" } },
      status: { allowed: false },
    },
  },
  {
    command: "kubectl auth can-i get pods/log --subresource=log -n kube-system",
    request: "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    body: "azhzAAoyChdhdXRob3JpemF0aW9uLms4cy5pby92MRIXU2VsZlN1YmplY3RBY2Nlc3NSZXZpZXcSRgoQCgASABoAIgAqADIAOABCABIoCiYKC2t1YmUtc3lzdGVtEgNnZXQaACIAKgRwb2RzMgNsb2c6A2xvZxoICAASABoAIAAaACIA",
    want: {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SelfSubjectAccessReview",
      metadata: { creationTimestamp: null },
      spec: { resourceAttributes: { namespace: "kube-system", verb: "get", resource: "pods", subresource: "log", name: "log" } },
      status: { allowed: false },
    },
  },
  {
    command: "kubectl auth can-i delete deployments.apps/web",
    request: "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    body: "azhzAAoyChdhdXRob3JpemF0aW9uLms4cy5pby92MRIXU2VsZlN1YmplY3RBY2Nlc3NSZXZpZXcSTQoQCgASABoAIgAqADIAOABCABIvCi0KB2RlZmF1bHQSBmRlbGV0ZRoEYXBwcyIAKgtkZXBsb3ltZW50czIAOgN3ZWIaCAgAEgAaACAAGgAiAA==",
    want: {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SelfSubjectAccessReview",
      metadata: { creationTimestamp: null },
      spec: { resourceAttributes: { namespace: "default", verb: "delete", group: "apps", resource: "deployments", name: "web" } },
      status: { allowed: false },
    },
  },
  {
    command: "kubectl auth can-i get /healthz",
    request: "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    body: "azhzAAoyChdhdXRob3JpemF0aW9uLms4cy5pby92MRIXU2VsZlN1YmplY3RBY2Nlc3NSZXZpZXcSLwoQCgASABoAIgAqADIAOABCABIREg8KCC9oZWFsdGh6EgNnZXQaCAgAEgAaACAAGgAiAA==",
    want: {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SelfSubjectAccessReview",
      metadata: { creationTimestamp: null },
      spec: { nonResourceAttributes: { path: "/healthz", verb: "get" } },
      status: { allowed: false },
    },
  },
  {
    command: "kubectl auth can-i --list",
    request: "POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
    body: "azhzAAoxChdhdXRob3JpemF0aW9uLms4cy5pby92MRIWU2VsZlN1YmplY3RSdWxlc1JldmlldxIjChAKABIAGgAiACoAMgA4AEIAEgkKB2RlZmF1bHQaBBgAIgAaACIA",
    want: {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SelfSubjectRulesReview",
      metadata: { creationTimestamp: null },
      spec: { namespace: "default" },
      status: { incomplete: false },
    },
  },
  {
    command: "kubectl auth whoami",
    request: "POST /apis/authentication.k8s.io/v1/selfsubjectreviews",
    body: "azhzAAotChhhdXRoZW50aWNhdGlvbi5rOHMuaW8vdjESEVNlbGZTdWJqZWN0UmV2aWV3EhoKEAoAEgAaACIAKgAyADgAQgASBgoECgASABoAIgA=",
    want: {
      apiVersion: "authentication.k8s.io/v1",
      kind: "SelfSubjectReview",
      metadata: { creationTimestamp: null },
      status: { userInfo: {} },
    },
  },
  {
    command: "kubectl create token sa1",
    request: "POST /api/v1/namespaces/default/serviceaccounts/sa1/token",
    body: "azhzAAooChhhdXRoZW50aWNhdGlvbi5rOHMuaW8vdjESDFRva2VuUmVxdWVzdBIaChAKABIAGgAiACoAMgA4AEIAEgAaBAoAEgAaACIA",
    want: {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      metadata: { creationTimestamp: null },
      spec: {},
      status: { token: "", expirationTimestamp: null },
    },
  },
  {
    command:
      "kubectl create token sa1 --audience=api --audience=vault --duration=1h --bound-object-kind=Pod --bound-object-name=p1 --bound-object-uid=1234-abcd",
    request: "POST /api/v1/namespaces/default/serviceaccounts/sa1/token",
    body: "azhzAAooChhhdXRoZW50aWNhdGlvbi5rOHMuaW8vdjESDFRva2VuUmVxdWVzdBJDChAKABIAGgAiACoAMgA4AEIAEikKA2FwaQoFdmF1bHQaGAoDUG9kEgJ2MRoCcDEiCTEyMzQtYWJjZCCQHBoECgASABoAIgA=",
    want: {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      metadata: { creationTimestamp: null },
      spec: {
        audiences: ["api", "vault"],
        boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "p1", uid: "1234-abcd" },
        expirationSeconds: 3600,
      },
      status: { token: "", expirationTimestamp: null },
    },
  },
  {
    command: "kubectl drain n1 --ignore-daemonsets --grace-period=10 --disable-eviction",
    request: "DELETE /api/v1/namespaces/default/pods/p1",
    body: "azhzAAoTCgJ2MRINRGVsZXRlT3B0aW9ucxICCAoaACIA",
    want: { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 10 },
  },
];

// ---------------------------------------------------------------------------------------
// A minimal protobuf encoder for hand-built bodies.

type Bytes = Uint8Array;

function cat(...parts: Bytes[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A varint; negative numbers are 64-bit two's complement, as Go encodes int32/int64. */
function varint(n: number | bigint): Bytes {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

const key = (field: number, wire: number): Bytes => varint(field * 8 + wire);
const int = (field: number, n: number | bigint): Bytes => cat(key(field, 0), varint(n));
const bool = (field: number, b: boolean): Bytes => int(field, b ? 1 : 0);
const raw = (field: number, b: Bytes): Bytes => cat(key(field, 2), varint(b.length), b);
const str = (field: number, s: string): Bytes => raw(field, new TextEncoder().encode(s));
const msg = (field: number, ...parts: Bytes[]): Bytes => raw(field, cat(...parts));
const entry = (field: number, k: string, v: Bytes): Bytes => msg(field, str(1, k), v);
const fixed64 = (field: number): Bytes => cat(key(field, 1), new Uint8Array(8).fill(0xab));
const fixed32 = (field: number): Bytes => cat(key(field, 5), new Uint8Array(4).fill(0xcd));

const MAGIC = Uint8Array.from([0x6b, 0x38, 0x73, 0x00]);

function envelope(apiVersion: string, kind: string, object: Bytes, ...extra: Bytes[]): Bytes {
  return cat(MAGIC, msg(1, str(1, apiVersion), str(2, kind)), raw(2, object), ...extra);
}

const time = (field: number, seconds: number, nanos = 0): Bytes => msg(field, int(1, seconds), int(2, nanos));
const quantity = (field: number, k: string, q: string): Bytes => entry(field, k, msg(2, str(1, q)));
const intOrString = (field: number, v: number | string): Bytes =>
  typeof v === "number" ? msg(field, int(1, 0), int(2, v), str(3, "")) : msg(field, int(1, 1), int(2, 0), str(3, v));
const meta = (...parts: Bytes[]): Bytes => msg(1, ...parts);

function decodeB64(s: string): Bytes {
  return new Uint8Array(Buffer.from(s, "base64"));
}

/** The object bytes (field 2) of an envelope whose first field is a short typeMeta. */
function objectOf(body: Bytes): Bytes {
  let i = MAGIC.length;
  expect(body[i]).toBe(0x0a);
  i += 2 + body[i + 1];
  expect(body[i++]).toBe(0x12);
  let len = 0;
  for (let shift = 0; ; shift += 7) {
    const b = body[i++];
    len += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  return body.subarray(i, i + len);
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to throw");
}

function expectBadRequest(body: Bytes, message?: RegExp): void {
  const e = caught(() => decodeProtobufObject(body));
  expect(e).toBeInstanceOf(ApiError);
  expect({ code: (e as ApiError).code, reason: (e as ApiError).reason }).toEqual({ code: 400, reason: "BadRequest" });
  if (message) expect((e as ApiError).message).toMatch(message);
}

/** Decodes, or throws a 400 ApiError; anything else (a TypeError, a RangeError) fails the test. */
function decodesOrRejects(body: Bytes): void {
  try {
    decodeProtobufObject(body);
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe(400);
  }
}

// ---------------------------------------------------------------------------------------

describe("kubectl's protobuf request bodies", () => {
  it("declares the protobuf media type", () => {
    expect(PROTOBUF_CONTENT_TYPE).toBe("application/vnd.kubernetes.protobuf");
  });

  for (const f of KUBECTL) {
    it(`${f.command} (${f.request})`, () => {
      expect(decodeProtobufObject(decodeB64(f.body))).toStrictEqual(f.want);
    });
  }
});

describe("the envelope", () => {
  const ns = meta(str(1, "n1"));

  it("uses apiVersion and kind from the envelope", () => {
    expect(decodeProtobufObject(envelope("v1", "Namespace", ns))).toStrictEqual({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "n1" },
    });
  });

  it("rejects a body without the k8s magic", () => {
    expectBadRequest(new Uint8Array(0), /prefix/);
    expectBadRequest(Uint8Array.from([0x6b, 0x38, 0x73]), /prefix/);
    expectBadRequest(new TextEncoder().encode('{"kind":"Namespace","apiVersion":"v1"}'), /prefix/);
    expectBadRequest(envelope("v1", "Namespace", ns).subarray(1), /prefix/);
  });

  it("rejects a missing kind and kinds it cannot decode", () => {
    expectBadRequest(MAGIC, /Kind' is missing/);
    expectBadRequest(cat(MAGIC, raw(2, ns)), /Kind' is missing/);
    expectBadRequest(envelope("v1", "Frobnicator", ns), /no kind "Frobnicator" is registered for version "v1"/);
    expectBadRequest(envelope("apps/v1beta1", "Deployment", ns), /no kind "Deployment"/);
    expectBadRequest(envelope("apps/v1", "Namespace", ns), /no kind "Namespace"/);
    expectBadRequest(envelope("", "Namespace", ns), /no kind/);
  });

  it("rejects content encodings and foreign content types inside the envelope", () => {
    expectBadRequest(envelope("v1", "Namespace", ns, str(3, "gzip")), /content encoding "gzip"/);
    expectBadRequest(envelope("v1", "Namespace", ns, str(4, "application/json")), /content type "application\/json"/);
    expect(decodeProtobufObject(envelope("v1", "Namespace", ns, str(3, ""), str(4, PROTOBUF_CONTENT_TYPE))).metadata).toEqual({
      name: "n1",
    });
  });

  it("decodes DeleteOptions under any group version, and LocalSubjectAccessReview", () => {
    for (const apiVersion of ["v1", "meta.k8s.io/v1", "apps/v1"])
      expect(
        decodeProtobufObject(envelope(apiVersion, "DeleteOptions", cat(int(1, 0), str(4, "Foreground"), str(5, "All")))),
      ).toStrictEqual({
        apiVersion,
        kind: "DeleteOptions",
        gracePeriodSeconds: 0,
        propagationPolicy: "Foreground",
        dryRun: ["All"],
      });
    const spec = msg(2, msg(1, str(2, "get"), str(5, "pods")), str(3, "alice"), str(4, "devs"));
    expect(
      decodeProtobufObject(envelope("authorization.k8s.io/v1", "LocalSubjectAccessReview", cat(meta(str(3, "ns1")), spec))),
    ).toStrictEqual({
      apiVersion: "authorization.k8s.io/v1",
      kind: "LocalSubjectAccessReview",
      metadata: { namespace: "ns1" },
      spec: { resourceAttributes: { verb: "get", resource: "pods" }, user: "alice", groups: ["devs"] },
    });
  });

  it("skips unknown envelope fields", () => {
    expect(decodeProtobufObject(envelope("v1", "Namespace", ns, str(9, "x"), int(10, 3))).metadata).toEqual({ name: "n1" });
  });
});

describe("wire format", () => {
  it("skips unknown fields of every wire type, groups included", () => {
    const unknown = cat(
      int(90, 123456789),
      fixed64(91),
      str(92, "ignored"),
      fixed32(93),
      key(94, 3), // a group holding a varint, a nested group and a string
      int(1, 7),
      key(2, 3),
      str(1, "deep"),
      key(2, 4),
      str(3, "x"),
      key(94, 4),
    );
    const body = envelope("v1", "ConfigMap", cat(unknown, meta(str(1, "c1"), unknown), unknown, entry(2, "a", str(2, "b")), unknown));
    expect(decodeProtobufObject(body)).toStrictEqual({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c1" }, data: { a: "b" } });
  });

  it("rejects a wrong wire type for a known field", () => {
    expectBadRequest(envelope("v1", "Namespace", int(1, 5)), /wrong wire type 0 for field metadata/);
    expectBadRequest(envelope("v1", "Namespace", meta(int(1, 5))), /wrong wire type 0 for field name/);
    expectBadRequest(envelope("apps/v1", "Deployment", msg(2, str(1, "3"))), /wrong wire type 2 for field replicas/);
    expectBadRequest(cat(MAGIC, int(1, 1)), /wrong wire type/);
  });

  it("rejects malformed encodings", () => {
    const ns = (object: Bytes) => envelope("v1", "Namespace", object);
    expectBadRequest(ns(cat(key(1, 2), varint(50), Uint8Array.from([1, 2]))), /length out of range/);
    expectBadRequest(ns(cat(key(90, 0), Uint8Array.from([0xff, 0xff]))), /unexpected end of data/);
    expectBadRequest(ns(cat(key(90, 0), new Uint8Array(11).fill(0xff), Uint8Array.from([1]))), /integer overflow/);
    expectBadRequest(ns(Uint8Array.from([0x00, 0x01])), /illegal field tag/);
    expectBadRequest(ns(key(90, 6)), /illegal wire type 6/);
    expectBadRequest(ns(key(90, 7)), /illegal wire type 7/);
    expectBadRequest(ns(key(90, 4)), /end-group/);
    expectBadRequest(ns(cat(key(90, 3), int(1, 1))), /unexpected end of data/);
    expectBadRequest(ns(fixed64(90).subarray(0, 5)), /unexpected end of data/);
    expectBadRequest(ns(cat(key(90, 1), varint(1))), /unexpected end of data/);
    expectBadRequest(ns(meta(msg(8, int(1, 1e15)))), /timestamp out of range/);
    expectBadRequest(envelope("v1", "Pod", meta(msg(17, msg(7, str(1, "{not json"))))), /FieldsV1/);
  });

  it("never throws anything but a 400 on truncated or corrupted kubectl bodies", () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (const f of KUBECTL) {
      const body = decodeB64(f.body);
      for (let n = 0; n < body.length; n++) decodesOrRejects(body.subarray(0, n));
      for (let i = 0; i < 200; i++) {
        const mutated = body.slice();
        for (let k = 0; k < 1 + rand(4); k++) mutated[rand(mutated.length)] = rand(256);
        decodesOrRejects(mutated);
      }
    }
    const random = new Uint8Array(4096);
    for (let i = 0; i < 500; i++) {
      for (let k = 0; k < random.length; k++) random[k] = rand(256);
      decodesOrRejects(cat(MAGIC, random.subarray(0, rand(random.length))));
      decodesOrRejects(envelope("apps/v1", "Deployment", random.subarray(0, rand(random.length))));
    }
  });

  it("decodes objects truncated at any point inside an intact envelope, or rejects them", () => {
    for (const f of KUBECTL) {
      const body = decodeB64(f.body);
      const { apiVersion, kind } = decodeProtobufObject(body) as { apiVersion: string; kind: string };
      const object = objectOf(body);
      expect(envelope(apiVersion, kind, object)).toEqual(body.subarray(0, body.length - 4)); // kubectl adds empty fields 3 and 4
      for (let n = 0; n < object.length; n++) decodesOrRejects(envelope(apiVersion, kind, object.subarray(0, n)));
    }
  });

  it("reads negative and 64-bit integers", () => {
    const pod = envelope(
      "v1",
      "Pod",
      msg(
        2,
        int(25, -5), // priority *int32, sign-extended to 10 bytes
        int(4, 2 ** 40), // terminationGracePeriodSeconds *int64
        msg(14, int(2, -1), int(5, 0)), // securityContext runAsUser / fsGroup
        int(5, -(2 ** 40)), // activeDeadlineSeconds
      ),
    );
    expect(decodeProtobufObject(pod).spec).toStrictEqual({
      priority: -5,
      terminationGracePeriodSeconds: 2 ** 40,
      securityContext: { runAsUser: -1, fsGroup: 0 },
      activeDeadlineSeconds: -(2 ** 40),
    });
  });

  it("accepts repeated integers packed and unpacked", () => {
    const sc = (...parts: Bytes[]) => envelope("v1", "Pod", msg(2, msg(14, ...parts)));
    const packed = raw(4, cat(varint(1000), varint(2000)));
    expect(decodeProtobufObject(sc(packed, int(4, 3000))).spec).toStrictEqual({
      securityContext: { supplementalGroups: [1000, 2000, 3000] },
    });
    expect(decodeProtobufObject(sc(raw(4, new Uint8Array(0)))).spec).toStrictEqual({ securityContext: {} });
  });

  it("merges a message field that appears twice; the last scalar wins", () => {
    const body = envelope(
      "v1",
      "ConfigMap",
      cat(meta(str(1, "a"), entry(11, "x", str(2, "1"))), meta(str(3, "ns"), entry(11, "y", str(2, "2")), str(1, "b"))),
    );
    expect(decodeProtobufObject(body).metadata).toStrictEqual({ name: "b", namespace: "ns", labels: { x: "1", y: "2" } });
    // A zero value written later resets an omitempty field.
    expect(decodeProtobufObject(envelope("v1", "ConfigMap", meta(str(1, "a"), str(1, "")))).metadata).toStrictEqual({});
  });
});

describe("field encodings", () => {
  it("drops zero values of omitempty fields and keeps set pointers and required fields", () => {
    // Go always writes non-pointer scalars, so an empty ObjectMeta arrives full of zeros.
    const emptyMeta = meta(str(1, ""), str(2, ""), str(3, ""), str(4, ""), str(5, ""), str(6, ""), int(7, 0), msg(8));
    const sa = envelope("v1", "ServiceAccount", cat(emptyMeta, bool(4, false)));
    expect(decodeProtobufObject(sa)).toStrictEqual({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { creationTimestamp: null },
      automountServiceAccountToken: false,
    });
    const deploy = envelope(
      "apps/v1",
      "Deployment",
      msg(2, int(1, 0), int(5, 0), bool(7, false), msg(3, msg(2, msg(2, str(1, "c"), msg(6, int(2, 0), int(3, 0), str(4, "")))))),
    );
    expect(decodeProtobufObject(deploy).spec).toStrictEqual({
      replicas: 0,
      template: { spec: { containers: [{ name: "c", ports: [{ containerPort: 0 }] }] } },
    });
  });

  it("decodes maps: string, bytes and Quantity values, duplicate keys, missing parts, __proto__", () => {
    const cm = envelope(
      "v1",
      "ConfigMap",
      cat(
        meta(
          str(1, "c"),
          entry(11, "app", str(2, "web")),
          entry(11, "app", str(2, "api")),
          msg(12, str(1, "only-key")),
          msg(12, str(2, "no-key")),
        ),
        entry(2, "__proto__", str(2, "polluted?")),
        entry(2, "constructor", str(2, "x")),
        entry(3, "bin", raw(2, Uint8Array.from([0, 1, 254, 255]))),
        entry(3, "empty", raw(2, new Uint8Array(0))),
        msg(3, str(1, "novalue")),
      ),
    );
    const got = decodeProtobufObject(cm);
    expect(got.metadata).toStrictEqual({ name: "c", labels: { app: "api" }, annotations: { "only-key": "", "": "no-key" } });
    const data = got.data as Record<string, unknown>;
    expect(Object.keys(data)).toEqual(["__proto__", "constructor"]);
    expect(Object.getOwnPropertyDescriptor(data, "__proto__")?.value).toBe("polluted?");
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(got.binaryData).toStrictEqual({ bin: "AAH+/w==", empty: "", novalue: "" });

    const limits = cat(
      quantity(1, "cpu", "500m"),
      quantity(1, "memory", "128Mi"),
      quantity(2, "cpu", "250m"),
      entry(2, "zero", new Uint8Array(0)),
    );
    const pod = envelope("v1", "Pod", msg(2, msg(2, str(1, "c"), msg(8, limits))));
    expect((decodeProtobufObject(pod).spec as any).containers[0].resources).toStrictEqual({
      limits: { cpu: "500m", memory: "128Mi" },
      requests: { cpu: "250m", zero: "0" },
    });
  });

  it("encodes bytes as standard base64", () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
      const got = decodeProtobufObject(envelope("v1", "Secret", entry(2, "k", raw(2, bytes)))) as { data: { k: string } };
      expect(got.data.k).toBe(Buffer.from(bytes).toString("base64"));
    }
  });

  it("decodes metav1.Time and metav1.MicroTime", () => {
    const at = (t: Bytes) => decodeProtobufObject(envelope("v1", "Namespace", meta(t))).metadata;
    expect(at(time(8, 1795712400))).toStrictEqual({ creationTimestamp: "2026-11-26T17:00:00Z" });
    expect(at(time(8, 1795712400, 999_999_999))).toStrictEqual({ creationTimestamp: "2026-11-26T17:00:00Z" }); // Time keeps seconds only
    expect(at(time(9, 0))).toStrictEqual({ deletionTimestamp: "1970-01-01T00:00:00Z" });
    expect(at(time(9, -1))).toStrictEqual({ deletionTimestamp: "1969-12-31T23:59:59Z" });
    expect(at(msg(8))).toStrictEqual({ creationTimestamp: null }); // the zero time
    expect(at(time(8, -62135596800))).toStrictEqual({ creationTimestamp: "0001-01-01T00:00:00Z" });
    expect(at(time(8, 253402300799))).toStrictEqual({ creationTimestamp: "9999-12-31T23:59:59Z" });
    expectBadRequest(envelope("v1", "Namespace", meta(time(8, 253402300800))), /out of range/);

    const lease = envelope(
      "coordination.k8s.io/v1",
      "Lease",
      cat(
        meta(str(1, "l"), str(3, "kube-node-lease")),
        msg(2, str(1, "node-1"), int(2, 40), time(3, 1795712400, 123_456_789), time(4, 1795712400), int(5, 0)),
      ),
    );
    expect(decodeProtobufObject(lease)).toStrictEqual({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: "l", namespace: "kube-node-lease" },
      spec: {
        holderIdentity: "node-1",
        leaseDurationSeconds: 40,
        acquireTime: "2026-11-26T17:00:00.123456Z",
        renewTime: "2026-11-26T17:00:00.000000Z",
        leaseTransitions: 0,
      },
    });
  });

  it("decodes intstr.IntOrString", () => {
    const svc = envelope(
      "v1",
      "Service",
      msg(
        2,
        msg(1, str(1, "a"), int(3, 80), intOrString(4, 8080)),
        msg(1, str(1, "b"), int(3, 443), intOrString(4, "https")),
        msg(1, int(3, 1)),
      ),
    );
    expect((decodeProtobufObject(svc).spec as any).ports).toStrictEqual([
      { name: "a", port: 80, targetPort: 8080 },
      { name: "b", port: 443, targetPort: "https" },
      { port: 1 },
    ]);
    const strategy = envelope(
      "apps/v1",
      "Deployment",
      msg(2, msg(4, str(1, "RollingUpdate"), msg(2, intOrString(1, 0), intOrString(2, "25%")))),
    );
    expect((decodeProtobufObject(strategy).spec as any).strategy).toStrictEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 0, maxSurge: "25%" },
    });
  });

  it("decodes ExtraValue maps and FieldsV1", () => {
    const sar = envelope(
      "authorization.k8s.io/v1",
      "SubjectAccessReview",
      msg(
        2,
        msg(2, str(1, "/healthz"), str(2, "get")),
        str(3, "bob"),
        entry(5, "scopes", msg(2, str(1, "a"), str(1, "b"))),
        entry(5, "none", new Uint8Array(0)),
      ),
    );
    expect(decodeProtobufObject(sar).spec).toStrictEqual({
      nonResourceAttributes: { path: "/healthz", verb: "get" },
      user: "bob",
      extra: { scopes: ["a", "b"], none: [] },
    });
    const managed = meta(
      msg(17, str(1, "kubectl"), str(2, "Apply"), str(3, "v1"), time(4, 0), str(6, "FieldsV1"), msg(7, str(1, '{"f:data":{".":{}}}'))),
    );
    expect(decodeProtobufObject(envelope("v1", "ConfigMap", managed)).metadata).toStrictEqual({
      managedFields: [
        {
          manager: "kubectl",
          operation: "Apply",
          apiVersion: "v1",
          time: "1970-01-01T00:00:00Z",
          fieldsType: "FieldsV1",
          fieldsV1: { "f:data": { ".": {} } },
        },
      ],
    });
  });

  it("keeps struct-typed values even when zero, and checks the wire types inside them", () => {
    const env = msg(7, str(1, "CPU"), msg(3, msg(2, str(2, "limits.cpu"), msg(3))));
    const pod = envelope("v1", "Pod", msg(2, msg(2, str(1, "c"), env), msg(20, str(1, "i"), msg(6, int(3, 80)))));
    expect(decodeProtobufObject(pod).spec).toStrictEqual({
      containers: [{ name: "c", env: [{ name: "CPU", valueFrom: { resourceFieldRef: { resource: "limits.cpu", divisor: "0" } } }] }],
      initContainers: [{ name: "i", ports: [{ containerPort: 80 }] }],
    });
    expectBadRequest(envelope("v1", "Namespace", meta(msg(8, str(1, "2026")))), /wrong wire type 2 for field 1/);
    expectBadRequest(envelope("v1", "Service", msg(2, msg(1, msg(4, str(2, "80"))))), /wrong wire type 2 for field 2/);
    expectBadRequest(envelope("v1", "ConfigMap", msg(2, int(1, 1))), /wrong wire type 0 for field 1/);
  });

  it("decodes a large body quickly", () => {
    const value = "x".repeat(1 << 20);
    const started = Date.now();
    const got = decodeProtobufObject(envelope("v1", "ConfigMap", cat(meta(str(1, "big")), entry(2, "k", str(2, value))))) as {
      data: { k: string };
    };
    expect(got.data.k).toBe(value);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("decodes UTF-8 strings, replacing invalid sequences like Go's JSON encoding", () => {
    const cm = envelope(
      "v1",
      "ConfigMap",
      cat(
        entry(2, "k", str(2, "héllo ☃ 😀")),
        entry(2, "bom", str(2, "\ufeffx")),
        entry(2, "bad", raw(2, Uint8Array.from([0x61, 0xff, 0x62]))),
      ),
    );
    expect(decodeProtobufObject(cm).data).toStrictEqual({ k: "héllo ☃ 😀", bom: "\ufeffx", bad: "a\ufffdb" });
  });

  it("decodes a Pod with the common PodSpec fields", () => {
    const container = msg(
      2,
      str(1, "app"),
      str(2, "nginx:1.27"),
      str(3, "sh"),
      str(4, "-c"),
      str(4, "run"),
      msg(6, str(1, "http"), int(3, 8080), str(4, "TCP")),
      msg(7, str(1, "A"), str(2, "1")),
      msg(7, str(1, "POD"), msg(3, msg(1, str(1, "v1"), str(2, "metadata.name")))),
      msg(7, str(1, "PW"), msg(3, msg(4, msg(1, str(1, "creds")), str(2, "password"), bool(3, true)))),
      msg(7, str(1, "CM"), msg(3, msg(3, msg(1, str(1, "cfg")), str(2, "k")))),
      msg(19, str(1, "X_"), msg(2, msg(1, str(1, "cfg")))),
      msg(8, quantity(1, "cpu", "1"), quantity(2, "memory", "64Mi")),
      msg(9, str(1, "data"), str(3, "/data"), bool(2, true)),
      msg(
        10,
        msg(1, msg(2, str(1, "/healthz"), intOrString(2, "http"), str(4, "HTTP"), msg(5, str(1, "X-A"), str(2, "b")))),
        int(2, 5),
        int(4, 10),
      ),
      msg(11, msg(1, msg(3, intOrString(1, 8080))), int(6, 3)),
      msg(22, msg(1, msg(1, str(1, "true")))),
      msg(12, msg(2, msg(4, int(1, 5)))),
      str(14, "IfNotPresent"),
      msg(15, msg(1, str(1, "NET_ADMIN"), str(2, "ALL")), bool(7, false), bool(6, true), int(4, 1000)),
    );
    // Volume is {1: name, 2: VolumeSource (inlined in JSON)}.
    const volume = (name: string, source: Bytes) => msg(1, str(1, name), msg(2, source));
    const volumes = cat(
      volume("data", msg(2, str(1, "Memory"), msg(2, str(1, "1Gi")))),
      volume("cfg", msg(19, msg(1, str(1, "cfg")), msg(2, str(1, "a"), str(2, "a.txt"), int(3, 0o400)), int(3, 0o644))),
      volume("sec", msg(6, str(1, "creds"), bool(4, true))),
      volume("host", msg(1, str(1, "/var/log"), str(2, "Directory"))),
      volume("pvc", msg(10, str(1, "claim"))),
      volume("proj", msg(26, msg(1, msg(4, str(1, "vault"), int(2, 3600), str(3, "token"))))),
    );
    const spec = msg(
      2,
      volumes,
      container,
      msg(20, str(1, "init"), str(2, "busybox")),
      str(3, "Always"),
      int(4, 30),
      str(6, "ClusterFirst"),
      entry(7, "disk", str(2, "ssd")),
      str(8, "sa1"),
      str(10, "node-1"),
      bool(11, false),
      msg(15, str(1, "regcred")),
      str(19, "default-scheduler"),
      msg(22, str(1, "node.kubernetes.io/not-ready"), str(2, "Exists"), str(4, "NoExecute"), int(5, 300)),
      msg(
        18,
        msg(
          1,
          msg(1, msg(1, msg(1, str(1, "zone"), str(2, "In"), str(3, "a"), str(3, "b")))),
          msg(2, int(1, 10), msg(2, msg(1, str(1, "gpu"), str(2, "Exists")))),
        ),
        msg(
          3,
          msg(
            1,
            msg(1, entry(1, "app", str(2, "web")), msg(2, str(1, "tier"), str(2, "NotIn"), str(3, "db"))),
            str(3, "kubernetes.io/hostname"),
          ),
        ),
      ),
      msg(33, int(1, 1), str(2, "zone"), str(3, "DoNotSchedule"), msg(4, entry(1, "app", str(2, "web")))),
      bool(30, false),
    );
    const status = msg(
      3,
      str(1, "Running"),
      str(6, "10.0.0.5"),
      msg(12, str(1, "10.0.0.5")),
      time(7, 1795712400),
      msg(2, str(1, "Ready"), str(2, "True"), msg(3), time(4, 1795712400)),
    );
    const pod = envelope(
      "v1",
      "Pod",
      cat(
        meta(
          str(1, "web-0"),
          str(2, "web-"),
          str(3, "default"),
          str(6, "42"),
          entry(11, "app", str(2, "web")),
          entry(12, "note", str(2, "x")),
          msg(13, str(1, "ReplicaSet"), str(3, "web-rs"), str(4, "uid-1"), str(5, "apps/v1"), bool(6, true), bool(7, true)),
          str(14, "example.com/finalizer"),
          int(10, 0),
        ),
        spec,
        status,
      ),
    );
    expect(decodeProtobufObject(pod)).toStrictEqual({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "web-0",
        generateName: "web-",
        namespace: "default",
        resourceVersion: "42",
        labels: { app: "web" },
        annotations: { note: "x" },
        ownerReferences: [
          { kind: "ReplicaSet", name: "web-rs", uid: "uid-1", apiVersion: "apps/v1", controller: true, blockOwnerDeletion: true },
        ],
        finalizers: ["example.com/finalizer"],
        deletionGracePeriodSeconds: 0,
      },
      spec: {
        volumes: [
          { name: "data", emptyDir: { medium: "Memory", sizeLimit: "1Gi" } },
          { name: "cfg", configMap: { name: "cfg", items: [{ key: "a", path: "a.txt", mode: 256 }], defaultMode: 420 } },
          { name: "sec", secret: { secretName: "creds", optional: true } },
          { name: "host", hostPath: { path: "/var/log", type: "Directory" } },
          { name: "pvc", persistentVolumeClaim: { claimName: "claim" } },
          {
            name: "proj",
            projected: { sources: [{ serviceAccountToken: { audience: "vault", expirationSeconds: 3600, path: "token" } }] },
          },
        ],
        containers: [
          {
            name: "app",
            image: "nginx:1.27",
            command: ["sh"],
            args: ["-c", "run"],
            ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
            env: [
              { name: "A", value: "1" },
              { name: "POD", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } },
              { name: "PW", valueFrom: { secretKeyRef: { name: "creds", key: "password", optional: true } } },
              { name: "CM", valueFrom: { configMapKeyRef: { name: "cfg", key: "k" } } },
            ],
            envFrom: [{ prefix: "X_", configMapRef: { name: "cfg" } }],
            resources: { limits: { cpu: "1" }, requests: { memory: "64Mi" } },
            volumeMounts: [{ name: "data", mountPath: "/data", readOnly: true }],
            livenessProbe: {
              httpGet: { path: "/healthz", port: "http", scheme: "HTTP", httpHeaders: [{ name: "X-A", value: "b" }] },
              initialDelaySeconds: 5,
              periodSeconds: 10,
            },
            readinessProbe: { tcpSocket: { port: 8080 }, failureThreshold: 3 },
            startupProbe: { exec: { command: ["true"] } },
            lifecycle: { preStop: { sleep: { seconds: 5 } } },
            imagePullPolicy: "IfNotPresent",
            securityContext: {
              capabilities: { add: ["NET_ADMIN"], drop: ["ALL"] },
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              runAsUser: 1000,
            },
          },
        ],
        initContainers: [{ name: "init", image: "busybox" }],
        restartPolicy: "Always",
        terminationGracePeriodSeconds: 30,
        dnsPolicy: "ClusterFirst",
        nodeSelector: { disk: "ssd" },
        serviceAccountName: "sa1",
        nodeName: "node-1",
        imagePullSecrets: [{ name: "regcred" }],
        schedulerName: "default-scheduler",
        tolerations: [{ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 }],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["a", "b"] }] }],
            },
            preferredDuringSchedulingIgnoredDuringExecution: [
              { weight: 10, preference: { matchExpressions: [{ key: "gpu", operator: "Exists" }] } },
            ],
          },
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [
              {
                labelSelector: { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "NotIn", values: ["db"] }] },
                topologyKey: "kubernetes.io/hostname",
              },
            ],
          },
        },
        topologySpreadConstraints: [
          { maxSkew: 1, topologyKey: "zone", whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: { app: "web" } } },
        ],
        enableServiceLinks: false,
      },
      status: {
        phase: "Running",
        podIP: "10.0.0.5",
        podIPs: [{ ip: "10.0.0.5" }],
        startTime: "2026-11-26T17:00:00Z",
        conditions: [{ type: "Ready", status: "True", lastProbeTime: null, lastTransitionTime: "2026-11-26T17:00:00Z" }],
      },
    });
  });

  it("decodes an Event, a Binding and a Scale", () => {
    const event = envelope(
      "v1",
      "Event",
      cat(
        meta(str(1, "web.1"), str(3, "default")),
        msg(2, str(1, "Pod"), str(2, "default"), str(3, "web"), str(4, "uid-1"), str(5, "v1")),
        str(3, "Scheduled"),
        str(4, "assigned"),
        msg(5, str(1, "scheduler")),
        time(6, 1795712400),
        msg(7),
        int(8, 1),
        str(9, "Normal"),
        time(10, 1795712400, 5000),
        str(14, "default-scheduler"),
        str(15, ""),
      ),
    );
    expect(decodeProtobufObject(event)).toStrictEqual({
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "web.1", namespace: "default" },
      involvedObject: { kind: "Pod", namespace: "default", name: "web", uid: "uid-1", apiVersion: "v1" },
      reason: "Scheduled",
      message: "assigned",
      source: { component: "scheduler" },
      firstTimestamp: "2026-11-26T17:00:00Z",
      lastTimestamp: null,
      count: 1,
      type: "Normal",
      eventTime: "2026-11-26T17:00:00.000005Z",
      reportingComponent: "default-scheduler",
      reportingInstance: "",
    });
    const binding = envelope("v1", "Binding", cat(meta(str(1, "web")), msg(2, str(1, "Node"), str(3, "node-1"))));
    expect(decodeProtobufObject(binding)).toStrictEqual({
      apiVersion: "v1",
      kind: "Binding",
      metadata: { name: "web" },
      target: { kind: "Node", name: "node-1" },
    });
    const scale = envelope("autoscaling/v1", "Scale", cat(meta(str(1, "web")), msg(2, int(1, 0)), msg(3, int(1, 2), str(2, "app=web"))));
    expect(decodeProtobufObject(scale)).toStrictEqual({
      apiVersion: "autoscaling/v1",
      kind: "Scale",
      metadata: { name: "web" },
      spec: {},
      status: { replicas: 2, selector: "app=web" },
    });
  });
});
