// Decoding of Kubernetes protobuf request bodies (Content-Type
// application/vnd.kubernetes.protobuf), which kubectl's typed clients send for built-in
// kinds. We only ever answer in JSON, so there is no encoder: a body is turned into the
// JSON object the same client would have sent with Content-Type application/json, and
// the rest of the request path never knows the difference.
//
// Wire format: the 4 bytes "k8s\0", then a runtime.Unknown message
//   { 1: typeMeta {1: apiVersion, 2: kind}, 2: raw (the object), 3: contentEncoding, 4: contentType }
// where raw is the go-to-protobuf encoding of the Go struct: field numbers are those of
// the `protobuf:"..."` struct tags in k8s.io/api and k8s.io/apimachinery. The tables below
// are written from those tags (and the Go JSON tags, which give the JSON names and which
// zero values the JSON encoding would omit).
//
// JSON shape rules (they mirror encoding/json over the Go struct that kube-apiserver would
// decode into, i.e. what kubectl's own JSON bodies look like):
//   - go-to-protobuf always writes non-pointer scalars, even "" / 0 / false; those with
//     `omitempty` are dropped here, those without it (and set pointers, marked "!") are kept.
//   - nested structs are always present (Go's omitempty never drops a struct), so e.g.
//     `status: {}` and `resources: {}` appear just as in kubectl's JSON; the same goes for
//     the struct-typed values below, e.g. `targetPort: 0`, `maxUnavailable: 0`;
//   - metav1.Time is RFC3339 in UTC with seconds precision, and the zero time (an empty
//     message) is JSON null (`creationTimestamp: null`); MicroTime has 6 fractional digits;
//   - resource.Quantity is its string, passed through unparsed ("0" if absent);
//     intstr.IntOrString is a number or a string;
//   - []byte (Secret data, ConfigMap binaryData) is base64; metav1.FieldsV1 is its raw JSON;
//   - repeated fields and maps appear only when they have entries (an absent
//     non-omitempty list is not turned into JSON null).
//
// Covered kinds (KINDS below) and everything they contain, except these rarely used
// fields, which are skipped like any unknown field:
//   PodSpec: schedulingGroup, evictionResponders; PodStatus: extendedResourceClaimStatus,
//   nodeAllocatableResourceClaimStatuses, volumeHealth; ContainerStatus: user,
//   allocatedResourcesStatus; VolumeMountStatus: volumeStatus;
//   VolumeSource: the cloud/legacy volume types (gcePersistentDisk, awsElasticBlockStore,
//   gitRepo, iscsi, glusterfs, rbd, flexVolume, cinder, cephfs, flocker, fc, azureFile,
//   vsphereVolume, quobyte, azureDisk, photonPersistentDisk, portworxVolume, scaleIO,
//   storageos); VolumeProjection: podCertificate; NodeSpec: configSource, podPreemptionPolicy;
//   NodeStatus: volumesAttached, config, declaredFeatures; NodeSystemInfo: swap;
//   TokenRequestSpec: attestations; ListMeta/Status (never sent as request bodies).

import { badRequest } from "../shared/errors.ts";

export const PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf";

// ---------------------------------------------------------------------------------------
// Field tables.
//
// Each message is a comma-separated list of `<number> <jsonName> <type>`:
//   type     s string | y bytes (base64) | b bool | i int32 | l int64 | t metav1.Time |
//            u metav1.MicroTime | q resource.Quantity | x intstr.IntOrString |
//            f metav1.FieldsV1 (raw JSON) | e ExtraValue ([]string) | <Message> (a table below)
//   type[]   repeated
//   {type}   map<string, type> (s, y, q or e)
//   type!    keep zero values (a pointer, or a field without omitempty)
//   jsonName ^ = embedded struct whose fields are inlined into the parent (json:",inline")

const MESSAGES: Record<string, string> = {
  // k8s.io/apimachinery/pkg/apis/meta/v1
  ObjectMeta:
    "1 name s, 2 generateName s, 3 namespace s, 4 selfLink s, 5 uid s, 6 resourceVersion s, 7 generation l," +
    " 8 creationTimestamp t, 9 deletionTimestamp t, 10 deletionGracePeriodSeconds l!, 11 labels {s}," +
    " 12 annotations {s}, 13 ownerReferences OwnerReference[], 14 finalizers s[], 17 managedFields ManagedFieldsEntry[]",
  OwnerReference: "5 apiVersion s!, 1 kind s!, 3 name s!, 4 uid s!, 6 controller b!, 7 blockOwnerDeletion b!",
  ManagedFieldsEntry: "1 manager s, 2 operation s, 3 apiVersion s, 4 time t, 6 fieldsType s, 7 fieldsV1 f, 8 subresource s",
  LabelSelector: "1 matchLabels {s}, 2 matchExpressions LabelSelectorRequirement[]",
  LabelSelectorRequirement: "1 key s!, 2 operator s!, 3 values s[]",
  FieldSelectorRequirement: "1 key s!, 2 operator s!, 3 values s[]",
  Condition: "1 type s!, 2 status s!, 3 observedGeneration l, 4 lastTransitionTime t, 5 reason s!, 6 message s!",
  DeleteOptions:
    "1 gracePeriodSeconds l!, 2 preconditions Preconditions, 3 orphanDependents b!, 4 propagationPolicy s!," +
    " 5 dryRun s[], 6 ignoreStoreReadErrorWithClusterBreakingPotential b!",
  Preconditions: "1 uid s!, 2 resourceVersion s!",

  // k8s.io/api/core/v1
  Namespace: "1 metadata ObjectMeta, 2 spec NamespaceSpec, 3 status NamespaceStatus",
  NamespaceSpec: "1 finalizers s[]",
  NamespaceStatus: "1 phase s, 2 conditions NamespaceCondition[]",
  NamespaceCondition: "1 type s!, 2 status s!, 4 lastTransitionTime t, 5 reason s, 6 message s",
  ConfigMap: "1 metadata ObjectMeta, 2 data {s}, 3 binaryData {y}, 4 immutable b!",
  Secret: "1 metadata ObjectMeta, 2 data {y}, 3 type s, 4 stringData {s}, 5 immutable b!",
  ServiceAccount:
    "1 metadata ObjectMeta, 2 secrets ObjectReference[], 3 imagePullSecrets LocalObjectReference[], 4 automountServiceAccountToken b!",
  ObjectReference: "1 kind s, 2 namespace s, 3 name s, 4 uid s, 5 apiVersion s, 6 resourceVersion s, 7 fieldPath s",
  LocalObjectReference: "1 name s",
  Binding: "1 metadata ObjectMeta, 2 target ObjectReference",

  Service: "1 metadata ObjectMeta, 2 spec ServiceSpec, 3 status ServiceStatus",
  ServiceSpec:
    "1 ports ServicePort[], 2 selector {s}, 3 clusterIP s, 18 clusterIPs s[], 4 type s, 5 externalIPs s[]," +
    " 7 sessionAffinity s, 8 loadBalancerIP s, 9 loadBalancerSourceRanges s[], 10 externalName s," +
    " 11 externalTrafficPolicy s, 12 healthCheckNodePort i, 13 publishNotReadyAddresses b," +
    " 14 sessionAffinityConfig SessionAffinityConfig, 19 ipFamilies s[], 17 ipFamilyPolicy s!," +
    " 20 allocateLoadBalancerNodePorts b!, 21 loadBalancerClass s!, 22 internalTrafficPolicy s!, 23 trafficDistribution s!",
  ServicePort: "1 name s, 2 protocol s, 6 appProtocol s!, 3 port i!, 4 targetPort x, 5 nodePort i",
  SessionAffinityConfig: "1 clientIP ClientIPConfig",
  ClientIPConfig: "1 timeoutSeconds i!",
  ServiceStatus: "1 loadBalancer LoadBalancerStatus, 2 conditions Condition[]",
  LoadBalancerStatus: "1 ingress LoadBalancerIngress[]",
  LoadBalancerIngress: "1 ip s, 2 hostname s, 3 ipMode s!, 4 ports PortStatus[]",
  PortStatus: "1 port i!, 2 protocol s!, 3 error s!",

  Endpoints: "1 metadata ObjectMeta, 2 subsets EndpointSubset[]",
  EndpointSubset: "1 addresses EndpointAddress[], 2 notReadyAddresses EndpointAddress[], 3 ports EndpointPort[]",
  EndpointAddress: "1 ip s!, 3 hostname s, 4 nodeName s!, 2 targetRef ObjectReference",
  EndpointPort: "1 name s, 2 port i!, 3 protocol s, 4 appProtocol s!",

  Event:
    "1 metadata ObjectMeta, 2 involvedObject ObjectReference, 3 reason s, 4 message s, 5 source EventSource," +
    " 6 firstTimestamp t, 7 lastTimestamp t, 8 count i, 9 type s, 10 eventTime u, 11 series EventSeries," +
    " 12 action s, 13 related ObjectReference, 14 reportingComponent s!, 15 reportingInstance s!",
  EventSource: "1 component s, 2 host s",
  EventSeries: "1 count i, 2 lastObservedTime u",

  Node: "1 metadata ObjectMeta, 2 spec NodeSpec, 3 status NodeStatus",
  NodeSpec: "1 podCIDR s, 7 podCIDRs s[], 3 providerID s, 4 unschedulable b, 5 taints Taint[], 2 externalID s",
  Taint: "1 key s!, 2 value s, 3 effect s!, 4 timeAdded t",
  NodeStatus:
    "1 capacity {q}, 2 allocatable {q}, 3 phase s, 4 conditions NodeCondition[], 5 addresses NodeAddress[]," +
    " 6 daemonEndpoints NodeDaemonEndpoints, 7 nodeInfo NodeSystemInfo, 8 images ContainerImage[], 9 volumesInUse s[]," +
    " 12 runtimeHandlers NodeRuntimeHandler[], 13 features NodeFeatures",
  NodeCondition: "1 type s!, 2 status s!, 3 lastHeartbeatTime t, 4 lastTransitionTime t, 5 reason s, 6 message s",
  NodeAddress: "1 type s!, 2 address s!",
  NodeDaemonEndpoints: "1 kubeletEndpoint DaemonEndpoint",
  DaemonEndpoint: "1 Port i!",
  NodeSystemInfo:
    "1 machineID s!, 2 systemUUID s!, 3 bootID s!, 4 kernelVersion s!, 5 osImage s!, 6 containerRuntimeVersion s!," +
    " 7 kubeletVersion s!, 8 kubeProxyVersion s!, 9 operatingSystem s!, 10 architecture s!",
  ContainerImage: "1 names s[], 2 sizeBytes l",
  NodeRuntimeHandler: "1 name s!, 2 features NodeRuntimeHandlerFeatures",
  NodeRuntimeHandlerFeatures: "1 recursiveReadOnlyMounts b!, 2 userNamespaces b!",
  NodeFeatures: "1 supplementalGroupsPolicy b!",

  Pod: "1 metadata ObjectMeta, 2 spec PodSpec, 3 status PodStatus",
  PodTemplateSpec: "1 metadata ObjectMeta, 2 spec PodSpec",
  PodSpec:
    "1 volumes Volume[], 20 initContainers Container[], 2 containers Container[]," +
    " 34 ephemeralContainers EphemeralContainer[], 3 restartPolicy s, 4 terminationGracePeriodSeconds l!," +
    " 5 activeDeadlineSeconds l!, 6 dnsPolicy s, 7 nodeSelector {s}, 8 serviceAccountName s, 9 serviceAccount s," +
    " 21 automountServiceAccountToken b!, 10 nodeName s, 11 hostNetwork b, 12 hostPID b, 13 hostIPC b," +
    " 27 shareProcessNamespace b!, 14 securityContext PodSecurityContext, 15 imagePullSecrets LocalObjectReference[]," +
    " 16 hostname s, 17 subdomain s, 18 affinity Affinity, 19 schedulerName s, 22 tolerations Toleration[]," +
    " 23 hostAliases HostAlias[], 24 priorityClassName s, 25 priority i!, 26 dnsConfig PodDNSConfig," +
    " 28 readinessGates PodReadinessGate[], 29 runtimeClassName s!, 30 enableServiceLinks b!, 31 preemptionPolicy s!," +
    " 32 overhead {q}, 33 topologySpreadConstraints TopologySpreadConstraint[], 35 setHostnameAsFQDN b!, 36 os PodOS," +
    " 37 hostUsers b!, 38 schedulingGates PodSchedulingGate[], 39 resourceClaims PodResourceClaim[]," +
    " 40 resources ResourceRequirements, 41 hostnameOverride s!",
  PodStatus:
    "17 observedGeneration l, 1 phase s, 2 conditions PodCondition[], 3 message s, 4 reason s, 11 nominatedNodeName s," +
    " 5 hostIP s, 16 hostIPs HostIP[], 6 podIP s, 12 podIPs PodIP[], 7 startTime t," +
    " 10 initContainerStatuses ContainerStatus[], 8 containerStatuses ContainerStatus[], 9 qosClass s," +
    " 13 ephemeralContainerStatuses ContainerStatus[], 14 resize s, 15 resourceClaimStatuses PodResourceClaimStatus[]," +
    " 19 allocatedResources {q}, 20 resources ResourceRequirements",
  PodResourceClaimStatus: "1 name s!, 2 resourceClaimName s!",
  PodCondition: "1 type s!, 7 observedGeneration l, 2 status s!, 3 lastProbeTime t, 4 lastTransitionTime t, 5 reason s, 6 message s",
  HostIP: "1 ip s!",
  PodIP: "1 ip s!",
  ContainerStatus:
    "1 name s!, 2 state ContainerState, 3 lastState ContainerState, 4 ready b!, 5 restartCount i!, 6 image s!," +
    " 7 imageID s!, 8 containerID s, 9 started b!, 10 allocatedResources {q}, 11 resources ResourceRequirements," +
    " 12 volumeMounts VolumeMountStatus[], 15 stopSignal s!",
  VolumeMountStatus: "1 name s!, 2 mountPath s!, 3 readOnly b, 4 recursiveReadOnly s!",
  ContainerState: "1 waiting ContainerStateWaiting, 2 running ContainerStateRunning, 3 terminated ContainerStateTerminated",
  ContainerStateWaiting: "1 reason s, 2 message s",
  ContainerStateRunning: "1 startedAt t",
  ContainerStateTerminated: "1 exitCode i!, 2 signal i, 3 reason s, 4 message s, 5 startedAt t, 6 finishedAt t, 7 containerID s",

  Container:
    "1 name s!, 2 image s, 3 command s[], 4 args s[], 5 workingDir s, 6 ports ContainerPort[], 19 envFrom EnvFromSource[]," +
    " 7 env EnvVar[], 8 resources ResourceRequirements, 23 resizePolicy ContainerResizePolicy[], 24 restartPolicy s!," +
    " 25 restartPolicyRules ContainerRestartRule[], 9 volumeMounts VolumeMount[], 21 volumeDevices VolumeDevice[]," +
    " 10 livenessProbe Probe, 11 readinessProbe Probe, 22 startupProbe Probe, 12 lifecycle Lifecycle," +
    " 13 terminationMessagePath s, 20 terminationMessagePolicy s, 14 imagePullPolicy s," +
    " 15 securityContext SecurityContext, 16 stdin b, 17 stdinOnce b, 18 tty b",
  EphemeralContainer: "1 ^ Container, 2 targetContainerName s",
  ContainerPort: "1 name s, 2 hostPort i, 3 containerPort i!, 4 protocol s, 5 hostIP s",
  EnvVar: "1 name s!, 2 value s, 3 valueFrom EnvVarSource",
  EnvVarSource:
    "1 fieldRef ObjectFieldSelector, 2 resourceFieldRef ResourceFieldSelector, 3 configMapKeyRef ConfigMapKeySelector," +
    " 4 secretKeyRef SecretKeySelector, 5 fileKeyRef FileKeySelector",
  ObjectFieldSelector: "1 apiVersion s, 2 fieldPath s!",
  ResourceFieldSelector: "1 containerName s, 2 resource s!, 3 divisor q",
  ConfigMapKeySelector: "1 ^ LocalObjectReference, 2 key s!, 3 optional b!",
  SecretKeySelector: "1 ^ LocalObjectReference, 2 key s!, 3 optional b!",
  FileKeySelector: "1 volumeName s!, 2 path s!, 3 key s!, 4 optional b!",
  EnvFromSource: "1 prefix s, 2 configMapRef ConfigMapEnvSource, 3 secretRef SecretEnvSource",
  ConfigMapEnvSource: "1 ^ LocalObjectReference, 2 optional b!",
  SecretEnvSource: "1 ^ LocalObjectReference, 2 optional b!",
  ResourceRequirements: "1 limits {q}, 2 requests {q}, 3 claims ResourceClaim[]",
  ResourceClaim: "1 name s!, 2 request s",
  ContainerResizePolicy: "1 resourceName s!, 2 restartPolicy s!",
  ContainerRestartRule: "1 action s, 2 exitCodes ContainerRestartRuleOnExitCodes",
  ContainerRestartRuleOnExitCodes: "1 operator s, 2 values i[]",
  VolumeMount:
    "1 name s!, 2 readOnly b, 7 recursiveReadOnly s!, 3 mountPath s!, 4 subPath s, 5 mountPropagation s!, 6 subPathExpr s," +
    " 8 bindMountOptions s[]",
  VolumeDevice: "1 name s!, 2 devicePath s!",
  Probe:
    "1 ^ ProbeHandler, 2 initialDelaySeconds i, 3 timeoutSeconds i, 4 periodSeconds i, 5 successThreshold i," +
    " 6 failureThreshold i, 7 terminationGracePeriodSeconds l!",
  ProbeHandler: "1 exec ExecAction, 2 httpGet HTTPGetAction, 3 tcpSocket TCPSocketAction, 4 grpc GRPCAction",
  ExecAction: "1 command s[]",
  HTTPGetAction: "1 path s, 2 port x, 3 host s, 4 scheme s, 5 httpHeaders HTTPHeader[], 6 protocol s!",
  HTTPHeader: "1 name s!, 2 value s!",
  TCPSocketAction: "1 port x, 2 host s",
  GRPCAction: "1 port i!, 2 service s!, 3 mode s!",
  Lifecycle: "1 postStart LifecycleHandler, 2 preStop LifecycleHandler, 3 stopSignal s!",
  LifecycleHandler: "1 exec ExecAction, 2 httpGet HTTPGetAction, 3 tcpSocket TCPSocketAction, 4 sleep SleepAction",
  SleepAction: "1 seconds l!",
  SecurityContext:
    "1 capabilities Capabilities, 2 privileged b!, 3 seLinuxOptions SELinuxOptions," +
    " 10 windowsOptions WindowsSecurityContextOptions, 4 runAsUser l!, 8 runAsGroup l!, 5 runAsNonRoot b!," +
    " 6 readOnlyRootFilesystem b!, 7 allowPrivilegeEscalation b!, 9 procMount s!, 11 seccompProfile SeccompProfile," +
    " 12 appArmorProfile AppArmorProfile",
  Capabilities: "1 add s[], 2 drop s[]",
  PodSecurityContext:
    "1 seLinuxOptions SELinuxOptions, 8 windowsOptions WindowsSecurityContextOptions, 2 runAsUser l!, 6 runAsGroup l!," +
    " 3 runAsNonRoot b!, 4 supplementalGroups l[], 12 supplementalGroupsPolicy s!, 5 fsGroup l!, 7 sysctls Sysctl[]," +
    " 9 fsGroupChangePolicy s!, 10 seccompProfile SeccompProfile, 11 appArmorProfile AppArmorProfile," +
    " 13 seLinuxChangePolicy s!",
  SELinuxOptions: "1 user s, 2 role s, 3 type s, 4 level s",
  WindowsSecurityContextOptions: "1 gmsaCredentialSpecName s!, 2 gmsaCredentialSpec s!, 3 runAsUserName s!, 4 hostProcess b!",
  SeccompProfile: "1 type s!, 2 localhostProfile s!",
  AppArmorProfile: "1 type s!, 2 localhostProfile s!",
  Sysctl: "1 name s!, 2 value s!",
  Toleration: "1 key s, 2 operator s, 3 value s, 4 effect s, 5 tolerationSeconds l!",
  Affinity: "1 nodeAffinity NodeAffinity, 2 podAffinity PodAffinity, 3 podAntiAffinity PodAntiAffinity",
  NodeAffinity:
    "1 requiredDuringSchedulingIgnoredDuringExecution NodeSelector," +
    " 2 preferredDuringSchedulingIgnoredDuringExecution PreferredSchedulingTerm[]",
  NodeSelector: "1 nodeSelectorTerms NodeSelectorTerm[]",
  NodeSelectorTerm: "1 matchExpressions NodeSelectorRequirement[], 2 matchFields NodeSelectorRequirement[]",
  NodeSelectorRequirement: "1 key s!, 2 operator s!, 3 values s[]",
  PreferredSchedulingTerm: "1 weight i!, 2 preference NodeSelectorTerm",
  PodAffinity:
    "1 requiredDuringSchedulingIgnoredDuringExecution PodAffinityTerm[]," +
    " 2 preferredDuringSchedulingIgnoredDuringExecution WeightedPodAffinityTerm[]",
  PodAntiAffinity:
    "1 requiredDuringSchedulingIgnoredDuringExecution PodAffinityTerm[]," +
    " 2 preferredDuringSchedulingIgnoredDuringExecution WeightedPodAffinityTerm[]",
  PodAffinityTerm:
    "1 labelSelector LabelSelector, 2 namespaces s[], 3 topologyKey s!, 4 namespaceSelector LabelSelector," +
    " 5 matchLabelKeys s[], 6 mismatchLabelKeys s[]",
  WeightedPodAffinityTerm: "1 weight i!, 2 podAffinityTerm PodAffinityTerm",
  TopologySpreadConstraint:
    "1 maxSkew i!, 2 topologyKey s!, 3 whenUnsatisfiable s!, 4 labelSelector LabelSelector, 5 minDomains i!," +
    " 6 nodeAffinityPolicy s!, 7 nodeTaintsPolicy s!, 8 matchLabelKeys s[]",
  HostAlias: "1 ip s!, 2 hostnames s[]",
  PodDNSConfig: "1 nameservers s[], 2 searches s[], 3 options PodDNSConfigOption[]",
  PodDNSConfigOption: "1 name s, 2 value s!",
  PodReadinessGate: "1 conditionType s!",
  PodOS: "1 name s!",
  PodSchedulingGate: "1 name s!",
  PodResourceClaim: "1 name s!, 3 resourceClaimName s!, 4 resourceClaimTemplateName s!",

  Volume: "1 name s!, 2 ^ VolumeSource",
  VolumeSource:
    "1 hostPath HostPathVolumeSource, 2 emptyDir EmptyDirVolumeSource, 6 secret SecretVolumeSource," +
    " 7 nfs NFSVolumeSource, 10 persistentVolumeClaim PersistentVolumeClaimVolumeSource," +
    " 16 downwardAPI DownwardAPIVolumeSource, 19 configMap ConfigMapVolumeSource, 26 projected ProjectedVolumeSource," +
    " 28 csi CSIVolumeSource, 29 ephemeral EphemeralVolumeSource, 30 image ImageVolumeSource",
  HostPathVolumeSource: "1 path s!, 2 type s!",
  EmptyDirVolumeSource: "1 medium s, 2 sizeLimit q, 3 mode i!",
  SecretVolumeSource: "1 secretName s, 2 items KeyToPath[], 3 defaultMode i!, 4 optional b!, 5 defaultUser l!",
  ConfigMapVolumeSource: "1 ^ LocalObjectReference, 2 items KeyToPath[], 3 defaultMode i!, 4 optional b!, 5 defaultUser l!",
  KeyToPath: "1 key s!, 2 path s!, 3 mode i!, 4 user l!",
  NFSVolumeSource: "1 server s!, 2 path s!, 3 readOnly b",
  PersistentVolumeClaimVolumeSource: "1 claimName s!, 2 readOnly b",
  DownwardAPIVolumeSource: "1 items DownwardAPIVolumeFile[], 2 defaultMode i!, 3 defaultUser l!",
  DownwardAPIVolumeFile: "1 path s!, 2 fieldRef ObjectFieldSelector, 3 resourceFieldRef ResourceFieldSelector, 4 mode i!, 5 user l!",
  ProjectedVolumeSource: "1 sources VolumeProjection[], 2 defaultMode i!, 3 defaultUser l!",
  VolumeProjection:
    "1 secret SecretProjection, 2 downwardAPI DownwardAPIProjection, 3 configMap ConfigMapProjection," +
    " 4 serviceAccountToken ServiceAccountTokenProjection, 5 clusterTrustBundle ClusterTrustBundleProjection",
  SecretProjection: "1 ^ LocalObjectReference, 2 items KeyToPath[], 4 optional b!",
  ConfigMapProjection: "1 ^ LocalObjectReference, 2 items KeyToPath[], 4 optional b!",
  DownwardAPIProjection: "1 items DownwardAPIVolumeFile[]",
  ServiceAccountTokenProjection: "1 audience s, 2 expirationSeconds l!, 3 path s!, 4 user l!",
  ClusterTrustBundleProjection: "1 name s!, 2 signerName s!, 3 labelSelector LabelSelector, 5 optional b!, 4 path s!, 6 user l!",
  CSIVolumeSource: "1 driver s!, 2 readOnly b!, 3 fsType s!, 4 volumeAttributes {s}, 5 nodePublishSecretRef LocalObjectReference",
  ImageVolumeSource: "1 reference s, 2 pullPolicy s",
  EphemeralVolumeSource: "1 volumeClaimTemplate PersistentVolumeClaimTemplate",
  PersistentVolumeClaimTemplate: "1 metadata ObjectMeta, 2 spec PersistentVolumeClaimSpec",
  PersistentVolumeClaimSpec:
    "1 accessModes s[], 4 selector LabelSelector, 2 resources VolumeResourceRequirements, 3 volumeName s," +
    " 5 storageClassName s!, 6 volumeMode s!, 7 dataSource TypedLocalObjectReference," +
    " 8 dataSourceRef TypedObjectReference, 9 volumeAttributesClassName s!",
  VolumeResourceRequirements: "1 limits {q}, 2 requests {q}",
  TypedLocalObjectReference: "1 apiGroup s!, 2 kind s!, 3 name s!",
  TypedObjectReference: "1 apiGroup s!, 2 kind s!, 3 name s!, 4 namespace s!",

  // k8s.io/api/apps/v1
  Deployment: "1 metadata ObjectMeta, 2 spec DeploymentSpec, 3 status DeploymentStatus",
  DeploymentSpec:
    "1 replicas i!, 2 selector LabelSelector, 3 template PodTemplateSpec, 4 strategy DeploymentStrategy," +
    " 5 minReadySeconds i, 6 revisionHistoryLimit i!, 7 paused b, 9 progressDeadlineSeconds i!",
  DeploymentStrategy: "1 type s, 2 rollingUpdate RollingUpdateDeployment",
  RollingUpdateDeployment: "1 maxUnavailable x, 2 maxSurge x",
  DeploymentStatus:
    "1 observedGeneration l, 2 replicas i, 3 updatedReplicas i, 7 readyReplicas i, 4 availableReplicas i," +
    " 5 unavailableReplicas i, 9 terminatingReplicas i!, 6 conditions DeploymentCondition[], 8 collisionCount i!",
  DeploymentCondition: "1 type s!, 2 status s!, 6 lastUpdateTime t, 7 lastTransitionTime t, 4 reason s, 5 message s",
  ReplicaSet: "1 metadata ObjectMeta, 2 spec ReplicaSetSpec, 3 status ReplicaSetStatus",
  ReplicaSetSpec: "1 replicas i!, 4 minReadySeconds i, 2 selector LabelSelector, 3 template PodTemplateSpec",
  ReplicaSetStatus:
    "1 replicas i!, 2 fullyLabeledReplicas i, 4 readyReplicas i, 5 availableReplicas i, 7 terminatingReplicas i!," +
    " 3 observedGeneration l, 6 conditions ReplicaSetCondition[]",
  ReplicaSetCondition: "1 type s!, 2 status s!, 3 lastTransitionTime t, 4 reason s, 5 message s",

  // k8s.io/api/rbac/v1
  Role: "1 metadata ObjectMeta, 2 rules PolicyRule[]",
  ClusterRole: "1 metadata ObjectMeta, 2 rules PolicyRule[], 3 aggregationRule AggregationRule",
  AggregationRule: "1 clusterRoleSelectors LabelSelector[]",
  PolicyRule: "1 verbs s[], 2 apiGroups s[], 3 resources s[], 4 resourceNames s[], 5 nonResourceURLs s[]",
  RoleBinding: "1 metadata ObjectMeta, 2 subjects Subject[], 3 roleRef RoleRef",
  ClusterRoleBinding: "1 metadata ObjectMeta, 2 subjects Subject[], 3 roleRef RoleRef",
  Subject: "1 kind s!, 2 apiGroup s, 3 name s!, 4 namespace s",
  RoleRef: "1 apiGroup s!, 2 kind s!, 3 name s!",

  // k8s.io/api/authorization/v1
  SelfSubjectAccessReview: "1 metadata ObjectMeta, 2 spec SelfSubjectAccessReviewSpec, 3 status SubjectAccessReviewStatus",
  SelfSubjectAccessReviewSpec: "1 resourceAttributes ResourceAttributes, 2 nonResourceAttributes NonResourceAttributes",
  SubjectAccessReview: "1 metadata ObjectMeta, 2 spec SubjectAccessReviewSpec, 3 status SubjectAccessReviewStatus",
  SubjectAccessReviewSpec:
    "1 resourceAttributes ResourceAttributes, 2 nonResourceAttributes NonResourceAttributes, 3 user s, 4 groups s[]," +
    " 5 extra {e}, 6 uid s",
  SubjectAccessReviewStatus: "1 allowed b!, 4 denied b, 2 reason s, 3 evaluationError s",
  ResourceAttributes:
    "1 namespace s, 2 verb s, 3 group s, 4 version s, 5 resource s, 6 subresource s, 7 name s," +
    " 8 fieldSelector FieldSelectorAttributes, 9 labelSelector LabelSelectorAttributes",
  NonResourceAttributes: "1 path s, 2 verb s",
  FieldSelectorAttributes: "1 rawSelector s, 2 requirements FieldSelectorRequirement[]",
  LabelSelectorAttributes: "1 rawSelector s, 2 requirements LabelSelectorRequirement[]",
  SelfSubjectRulesReview: "1 metadata ObjectMeta, 2 spec SelfSubjectRulesReviewSpec, 3 status SubjectRulesReviewStatus",
  SelfSubjectRulesReviewSpec: "1 namespace s",
  SubjectRulesReviewStatus: "1 resourceRules ResourceRule[], 2 nonResourceRules NonResourceRule[], 3 incomplete b!, 4 evaluationError s",
  ResourceRule: "1 verbs s[], 2 apiGroups s[], 3 resources s[], 4 resourceNames s[]",
  NonResourceRule: "1 verbs s[], 2 nonResourceURLs s[]",

  // k8s.io/api/authentication/v1
  SelfSubjectReview: "1 metadata ObjectMeta, 2 status SelfSubjectReviewStatus",
  SelfSubjectReviewStatus: "1 userInfo UserInfo",
  UserInfo: "1 username s, 2 uid s, 3 groups s[], 4 extra {e}",
  TokenRequest: "1 metadata ObjectMeta, 2 spec TokenRequestSpec, 3 status TokenRequestStatus",
  TokenRequestSpec: "1 audiences s[], 4 expirationSeconds l!, 3 boundObjectRef BoundObjectReference",
  BoundObjectReference: "1 kind s, 2 apiVersion s, 3 name s, 4 uid s",
  TokenRequestStatus: "1 token s!, 2 expirationTimestamp t",
  TokenReview: "1 metadata ObjectMeta, 2 spec TokenReviewSpec, 3 status TokenReviewStatus",
  TokenReviewSpec: "1 token s, 2 audiences s[]",
  TokenReviewStatus: "1 authenticated b, 2 user UserInfo, 4 audiences s[], 3 error s",

  // k8s.io/api/coordination/v1
  Lease: "1 metadata ObjectMeta, 2 spec LeaseSpec",
  LeaseSpec:
    "1 holderIdentity s!, 2 leaseDurationSeconds i!, 3 acquireTime u, 4 renewTime u, 5 leaseTransitions i!," +
    " 6 strategy s!, 7 preferredHolder s!",

  // k8s.io/api/autoscaling/v1
  Scale: "1 metadata ObjectMeta, 2 spec ScaleSpec, 3 status ScaleStatus",
  ScaleSpec: "1 replicas i",
  ScaleStatus: "1 replicas i!, 2 selector s",

  // k8s.io/api/policy/v1
  Eviction: "1 metadata ObjectMeta, 2 deleteOptions DeleteOptions",
};

/** apiVersion → kinds decodable from a protobuf body (the kind names a MESSAGES entry). */
const KINDS: Record<string, string[]> = {
  v1: ["Namespace", "ConfigMap", "Secret", "ServiceAccount", "Service", "Endpoints", "Pod", "Node", "Event", "Binding"],
  "apps/v1": ["Deployment", "ReplicaSet"],
  "rbac.authorization.k8s.io/v1": ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"],
  "authorization.k8s.io/v1": ["SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview", "SelfSubjectRulesReview"],
  "authentication.k8s.io/v1": ["SelfSubjectReview", "TokenRequest", "TokenReview"],
  "coordination.k8s.io/v1": ["Lease"],
  "autoscaling/v1": ["Scale"],
  "policy/v1": ["Eviction"],
};

/** Kinds whose message name differs from the kind. */
const KIND_MESSAGE: Record<string, string> = { LocalSubjectAccessReview: "SubjectAccessReview" };

// ---------------------------------------------------------------------------------------
// Compiled tables.

type Scalar = "s" | "y" | "b" | "i" | "l" | "t" | "u" | "q" | "x" | "f" | "e";

interface Field {
  json: string; // "^" = inline
  type: Scalar | MessageSpec;
  repeated: boolean;
  map: boolean;
  keep: boolean;
}

type MessageSpec = Map<number, Field>;

const SCALARS = new Set<string>(["s", "y", "b", "i", "l", "t", "u", "q", "x", "f", "e"]);
const MAP_VALUES = new Set<string>(["s", "y", "q", "e"]);

function compile(): Map<string, MessageSpec> {
  const specs = new Map<string, MessageSpec>();
  for (const name of Object.keys(MESSAGES)) specs.set(name, new Map());
  for (const [name, text] of Object.entries(MESSAGES)) {
    const spec = specs.get(name) as MessageSpec;
    for (const entry of text.split(",")) {
      const m = /^\s*(\d+) (\^|\w+) (\{\w+\}|\w+(?:\[\])?)(!?)\s*$/.exec(entry);
      if (!m) throw new Error(`protobuf table ${name}: bad entry "${entry}"`);
      const num = Number(m[1]);
      let t = m[3];
      const map = t.startsWith("{");
      const repeated = t.endsWith("[]");
      if (map) t = t.slice(1, -1);
      if (repeated) t = t.slice(0, -2);
      let type: Scalar | MessageSpec;
      if (SCALARS.has(t)) type = t as Scalar;
      else {
        const ref = specs.get(t);
        if (!ref) throw new Error(`protobuf table ${name}: unknown message ${t}`);
        type = ref;
      }
      if (map && !MAP_VALUES.has(t)) throw new Error(`protobuf table ${name}: bad map value type ${t}`);
      if (m[2] === "^" && (typeof type === "string" || repeated || map))
        throw new Error(`protobuf table ${name}: only a message can be inlined`);
      if (spec.has(num)) throw new Error(`protobuf table ${name}: duplicate field ${num}`);
      spec.set(num, { json: m[2], type, repeated, map, keep: m[4] === "!" });
    }
  }
  return specs;
}

const SPECS = compile();

// ---------------------------------------------------------------------------------------
// Wire-format reader. Every read is bounds-checked; all failures throw badRequest.

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

function malformed(why: string): Error {
  return badRequest(`unable to decode the protobuf request body: ${why}`);
}

class Reader {
  readonly buf: Uint8Array;
  pos = 0;
  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  /** A varint as [low 32 bits, high 32 bits], both unsigned. */
  varint(): [number, number] {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw malformed("unexpected end of data");
      const b = this.buf[this.pos++];
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (b < 0x80) return [lo >>> 0, hi >>> 0];
    }
    throw malformed("integer overflow");
  }

  int64(): number {
    const [lo, hi] = this.varint();
    if (hi & 0x80000000) return -((~hi >>> 0) * 0x100000000 + (~lo >>> 0) + 1);
    return hi * 0x100000000 + lo;
  }

  int32(): number {
    return this.varint()[0] | 0;
  }

  bool(): boolean {
    const [lo, hi] = this.varint();
    return lo !== 0 || hi !== 0;
  }

  bytes(): Uint8Array {
    const [lo, hi] = this.varint();
    if (hi !== 0 || lo > this.buf.length - this.pos) throw malformed("length out of range");
    const out = this.buf.subarray(this.pos, this.pos + lo);
    this.pos += lo;
    return out;
  }

  skipBytes(n: number): void {
    if (n > this.buf.length - this.pos) throw malformed("unexpected end of data");
    this.pos += n;
  }

  /** Reads a field key; returns [field number, wire type]. */
  tag(): [number, number] {
    const [lo, hi] = this.varint();
    const field = lo >>> 3;
    const wire = lo & 7;
    if (hi !== 0 || field === 0) throw malformed("illegal field tag");
    if (wire === WIRE_END_GROUP) throw malformed("unexpected end-group tag");
    return [field, wire];
  }

  /** Skips the value of a field with this wire type (groups included, however nested). */
  skip(wire: number): void {
    let depth = 0;
    for (;;) {
      switch (wire) {
        case WIRE_VARINT:
          this.varint();
          break;
        case WIRE_FIXED64:
          this.skipBytes(8);
          break;
        case WIRE_BYTES:
          this.bytes();
          break;
        case WIRE_FIXED32:
          this.skipBytes(4);
          break;
        case WIRE_START_GROUP:
          depth++;
          break;
        case WIRE_END_GROUP:
          if (depth === 0) throw malformed("unexpected end-group tag");
          depth--;
          break;
        default:
          throw malformed(`illegal wire type ${wire}`);
      }
      if (depth === 0) return;
      const [lo, hi] = this.varint();
      if (hi !== 0 || lo >>> 3 === 0) throw malformed("illegal field tag");
      wire = lo & 7;
    }
  }
}

// ignoreBOM: keep a leading U+FEFF, as Go does; invalid UTF-8 becomes U+FFFD, as in Go's JSON.
const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

function str(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function base64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  if (i + 1 === bytes.length) {
    const n = bytes[i] << 16;
    out += `${B64[n >> 18]}${B64[(n >> 12) & 63]}==`;
  } else if (i + 2 === bytes.length) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += `${B64[n >> 18]}${B64[(n >> 12) & 63]}${B64[(n >> 6) & 63]}=`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Special messages.

/**
 * Reads a field key of a small fixed message whose fields 1..count have the given wire
 * types (the last one repeating); a known field with another wire type is malformed.
 */
function known(r: Reader, count: number, ...wires: number[]): [number, number] {
  const [field, wire] = r.tag();
  if (field <= count && wire !== (wires[field - 1] ?? wires[wires.length - 1]))
    throw malformed(`wrong wire type ${wire} for field ${field}`);
  return [field, wire];
}

/** metav1.Time / metav1.MicroTime: {1: seconds, 2: nanos}; empty = the zero time = null. */
function decodeTime(bytes: Uint8Array, micro: boolean): string | null {
  if (bytes.length === 0) return null;
  const r = new Reader(bytes);
  let seconds = 0;
  let nanos = 0;
  while (!r.done) {
    const [field, wire] = known(r, 2, WIRE_VARINT);
    if (field === 1) seconds = r.int64();
    else if (field === 2) nanos = r.int32();
    else r.skip(wire);
  }
  // metav1.Time keeps whole seconds only; MicroTime truncates to microseconds.
  let micros = 0;
  if (micro) {
    seconds += Math.floor(nanos / 1e9);
    micros = Math.floor((((nanos % 1e9) + 1e9) % 1e9) / 1000);
  }
  // Years 0000..9999 only, as Go's JSON encoding of a time requires.
  if (!(seconds >= -62167219200 && seconds <= 253402300799)) throw malformed("timestamp out of range");
  const iso = new Date(seconds * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  return micro ? `${iso.slice(0, 19)}.${String(micros).padStart(6, "0")}Z` : `${iso.slice(0, 19)}Z`;
}

/**
 * resource.Quantity: {1: string}. The string is passed through as a JSON client would
 * send it (kube-apiserver parses it; so does whatever validates our JSON bodies).
 */
function decodeQuantity(bytes: Uint8Array): string {
  const r = new Reader(bytes);
  let s = "0"; // the zero Quantity
  while (!r.done) {
    const [field, wire] = known(r, 1, WIRE_BYTES);
    if (field === 1) s = str(r.bytes());
    else r.skip(wire);
  }
  return s;
}

/** intstr.IntOrString: {1: type (0 int, 1 string), 2: intVal, 3: strVal}. */
function decodeIntOrString(bytes: Uint8Array): number | string {
  const r = new Reader(bytes);
  let type = 0;
  let intVal = 0;
  let strVal = "";
  while (!r.done) {
    const [field, wire] = known(r, 3, WIRE_VARINT, WIRE_VARINT, WIRE_BYTES);
    if (field === 1) type = r.int64();
    else if (field === 2) intVal = r.int32();
    else if (field === 3) strVal = str(r.bytes());
    else r.skip(wire);
  }
  return type === 1 ? strVal : intVal;
}

/** metav1.FieldsV1: {1: Raw}, whose JSON form is the raw JSON itself. */
function decodeFieldsV1(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  let raw: Uint8Array | undefined;
  while (!r.done) {
    const [field, wire] = known(r, 1, WIRE_BYTES);
    if (field === 1) raw = r.bytes();
    else r.skip(wire);
  }
  if (!raw || raw.length === 0) return null;
  try {
    return JSON.parse(str(raw));
  } catch {
    throw malformed("metav1.FieldsV1 does not hold JSON");
  }
}

/** authentication/authorization ExtraValue: {1: repeated string items} → []string. */
function decodeStringList(bytes: Uint8Array): string[] {
  const r = new Reader(bytes);
  const items: string[] = [];
  while (!r.done) {
    const [field, wire] = known(r, 1, WIRE_BYTES);
    if (field === 1) items.push(str(r.bytes()));
    else r.skip(wire);
  }
  return items;
}

// ---------------------------------------------------------------------------------------
// Generic message decoding.

type Json = Record<string, unknown>;

/** Sets an own property even for keys like "__proto__" (map keys come from the client). */
function put(obj: Json, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

function isZero(v: unknown): boolean {
  return v === "" || v === 0 || v === false;
}

const MAX_DEPTH = 64;

function scalarWire(t: Scalar): number {
  return t === "b" || t === "i" || t === "l" ? WIRE_VARINT : WIRE_BYTES;
}

function readNumeric(r: Reader, t: Scalar): number | boolean {
  return t === "b" ? r.bool() : t === "i" ? r.int32() : r.int64();
}

/** A length-delimited or varint value of a non-message type, as JSON. */
function readScalar(r: Reader, t: Scalar): unknown {
  switch (t) {
    case "b":
    case "i":
    case "l":
      return readNumeric(r, t);
    case "s":
      return str(r.bytes());
    case "y":
      return base64(r.bytes());
    case "t":
      return decodeTime(r.bytes(), false);
    case "u":
      return decodeTime(r.bytes(), true);
    case "q":
      return decodeQuantity(r.bytes());
    case "x":
      return decodeIntOrString(r.bytes());
    case "f":
      return decodeFieldsV1(r.bytes());
    case "e":
      return decodeStringList(r.bytes());
  }
}

const MAP_ZERO: Record<string, unknown> = { s: "", y: "", q: "0", e: [] };

/** Types that Go's omitempty drops when zero; the others are structs, which it never drops. */
const OMITTABLE = new Set<Scalar>(["s", "y", "b", "i", "l"]);

function decodeMapEntry(bytes: Uint8Array, t: Scalar): [string, unknown] {
  const r = new Reader(bytes);
  let key = "";
  let value: unknown = MAP_ZERO[t];
  while (!r.done) {
    const [field, wire] = known(r, 2, WIRE_BYTES, WIRE_BYTES);
    if (field === 1) key = str(r.bytes());
    else if (field === 2) value = readScalar(r, t);
    else r.skip(wire);
  }
  return [key, value];
}

function decodeMessage(bytes: Uint8Array, spec: MessageSpec, out: Json, depth: number): Json {
  if (depth > MAX_DEPTH) throw malformed("nesting too deep");
  const r = new Reader(bytes);
  while (!r.done) {
    const [num, wire] = r.tag();
    const f = spec.get(num);
    if (!f) {
      r.skip(wire);
      continue;
    }
    const t = f.type;
    if (f.map) {
      if (wire !== WIRE_BYTES) throw malformed(`wrong wire type ${wire} for field ${f.json}`);
      const [k, v] = decodeMapEntry(r.bytes(), t as Scalar);
      if (!out[f.json]) out[f.json] = {};
      put(out[f.json] as Json, k, v);
    } else if (typeof t !== "string") {
      if (wire !== WIRE_BYTES) throw malformed(`wrong wire type ${wire} for field ${f.json}`);
      const body = r.bytes();
      if (f.json === "^") decodeMessage(body, t, out, depth + 1);
      else if (f.repeated) {
        const item = decodeMessage(body, t, {}, depth + 1);
        if (Array.isArray(out[f.json])) (out[f.json] as unknown[]).push(item);
        else out[f.json] = [item];
      } else {
        // A message field seen twice is merged, as protobuf specifies.
        const prev = out[f.json];
        const target = prev && typeof prev === "object" && !Array.isArray(prev) ? (prev as Json) : {};
        out[f.json] = decodeMessage(body, t, target, depth + 1);
      }
    } else if (f.repeated) {
      const expected = scalarWire(t);
      const items: unknown[] = [];
      if (wire === expected) items.push(readScalar(r, t));
      else if (expected === WIRE_VARINT && wire === WIRE_BYTES) {
        const packed = new Reader(r.bytes());
        while (!packed.done) items.push(readNumeric(packed, t));
      } else throw malformed(`wrong wire type ${wire} for field ${f.json}`);
      if (items.length) {
        if (Array.isArray(out[f.json])) (out[f.json] as unknown[]).push(...items);
        else out[f.json] = items;
      }
    } else {
      if (wire !== scalarWire(t)) throw malformed(`wrong wire type ${wire} for field ${f.json}`);
      const v = readScalar(r, t);
      if (f.keep || !OMITTABLE.has(t) || !isZero(v)) out[f.json] = v;
      else delete out[f.json];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The envelope.

const MAGIC = [0x6b, 0x38, 0x73, 0x00]; // "k8s\0"

/** The message that decodes a kind of an apiVersion, or undefined if not supported. */
function messageFor(apiVersion: string, kind: string): MessageSpec | undefined {
  // DeleteOptions is registered in every group version (and meta.k8s.io/v1).
  if (kind === "DeleteOptions" && apiVersion !== "") return SPECS.get("DeleteOptions");
  if (!KINDS[apiVersion]?.includes(kind)) return undefined;
  return SPECS.get(KIND_MESSAGE[kind] ?? kind);
}

/**
 * Decodes a Kubernetes protobuf request body (the "k8s\0" magic + runtime.Unknown envelope
 * {typeMeta{apiVersion,kind}, raw, contentEncoding, contentType}) into the JSON object
 * kube-apiserver would decode, using the apiVersion/kind from the envelope. Throws
 * badRequest (from ../shared/errors.ts) for malformed input or an unknown kind.
 */
export function decodeProtobufObject(body: Uint8Array): Record<string, unknown> {
  if (body.length < MAGIC.length || MAGIC.some((b, i) => body[i] !== b))
    throw badRequest("unable to decode the protobuf request body: missing the Kubernetes protobuf prefix");
  const r = new Reader(body.subarray(MAGIC.length));
  let apiVersion = "";
  let kind = "";
  let raw: Uint8Array = new Uint8Array(0);
  let contentEncoding = "";
  let contentType = "";
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field >= 1 && field <= 4 && wire !== WIRE_BYTES) throw malformed(`wrong wire type ${wire} in the envelope`);
    if (field === 1) {
      const tm = new Reader(r.bytes());
      while (!tm.done) {
        const [f, w] = tm.tag();
        if ((f === 1 || f === 2) && w !== WIRE_BYTES) throw malformed(`wrong wire type ${w} in the envelope`);
        if (f === 1) apiVersion = str(tm.bytes());
        else if (f === 2) kind = str(tm.bytes());
        else tm.skip(w);
      }
    } else if (field === 2) raw = r.bytes();
    else if (field === 3) contentEncoding = str(r.bytes());
    else if (field === 4) contentType = str(r.bytes());
    else r.skip(wire);
  }
  if (contentEncoding !== "") throw badRequest(`unsupported protobuf content encoding "${contentEncoding}"`);
  if (contentType !== "" && contentType !== PROTOBUF_CONTENT_TYPE)
    throw badRequest(`unsupported content type "${contentType}" inside the protobuf envelope`);
  if (kind === "") throw badRequest("Object 'Kind' is missing in the protobuf request body");
  const spec = messageFor(apiVersion, kind);
  if (!spec) throw badRequest(`no kind "${kind}" is registered for version "${apiVersion}" in protobuf request bodies`);
  const out: Json = { apiVersion, kind };
  decodeMessage(raw, spec, out, 0);
  return out;
}
