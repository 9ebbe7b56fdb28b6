package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"os"
	"path"
	"sort"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Shape is the world the simulator serves instead of its generated DC0/DC0_C0 model: one
// datacenter with one cluster of named hosts, shared datastores and named VMs. Its JSON
// form is written by the Rust testbed (testbed/src/vcsim.rs, `Shape`); keep them in step.
type Shape struct {
	Datacenter string           `json:"datacenter"`
	Cluster    string           `json:"cluster"`
	Hosts      []ShapeHost      `json:"hosts"`
	Datastores []ShapeDatastore `json:"datastores"`
	VMs        []ShapeVM        `json:"vms"`
}

type ShapeHost struct {
	Name     string `json:"name"`
	Cpus     int16  `json:"cpus"`
	MemoryMB int64  `json:"memoryMB"`
}

type ShapeDatastore struct {
	Name          string `json:"name"`
	CapacityBytes int64  `json:"capacityBytes"`
	FreeBytes     int64  `json:"freeBytes"`
}

type ShapeVM struct {
	Name          string            `json:"name"`
	Host          string            `json:"host"`
	Datastore     string            `json:"datastore"`
	NumCPU        int32             `json:"numCPU"`
	MemoryMB      int64             `json:"memoryMB"`
	DiskGB        int64             `json:"diskGB"`
	GuestID       string            `json:"guestId"`
	GuestFullName string            `json:"guestFullName"`
	PoweredOn     bool              `json:"poweredOn"`
	Fields        map[string]string `json:"fields,omitempty"`
}

// readShape reads and checks a shape file; errors name the file and the entry at fault.
func readShape(file string) (*Shape, error) {
	raw, err := ioutil.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read the shape file: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var s Shape
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: not a valid shape: %v", file, err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return &s, nil
}

func (s *Shape) check() error {
	if s.Datacenter == "" || s.Cluster == "" {
		return fmt.Errorf("datacenter and cluster must be named")
	}
	if len(s.Hosts) == 0 || len(s.Datastores) == 0 {
		return fmt.Errorf("a shape needs at least one host and one datastore")
	}
	names := map[string]string{}
	claim := func(kind, name string) error {
		if name == "" {
			return fmt.Errorf("a %s has an empty name", kind)
		}
		if other, ok := names[kind+"/"+name]; ok {
			return fmt.Errorf("%s %q is listed twice (%s)", kind, name, other)
		}
		names[kind+"/"+name] = kind
		return nil
	}
	for i, h := range s.Hosts {
		if err := claim("host", h.Name); err != nil {
			return fmt.Errorf("hosts[%d]: %v", i, err)
		}
	}
	for i, d := range s.Datastores {
		if err := claim("datastore", d.Name); err != nil {
			return fmt.Errorf("datastores[%d]: %v", i, err)
		}
		if d.CapacityBytes <= 0 || d.FreeBytes < 0 || d.FreeBytes > d.CapacityBytes {
			return fmt.Errorf("datastores[%d] (%s): need 0 <= freeBytes <= capacityBytes and capacityBytes > 0", i, d.Name)
		}
	}
	for i, vm := range s.VMs {
		if err := claim("vm", vm.Name); err != nil {
			return fmt.Errorf("vms[%d]: %v", i, err)
		}
		if _, ok := names["host/"+vm.Host]; !ok {
			return fmt.Errorf("vms[%d] (%s): host %q is not among the shape's hosts", i, vm.Name, vm.Host)
		}
		if _, ok := names["datastore/"+vm.Datastore]; !ok && vm.Datastore != "" {
			return fmt.Errorf("vms[%d] (%s): datastore %q is not among the shape's datastores", i, vm.Name, vm.Datastore)
		}
		if vm.NumCPU <= 0 || vm.MemoryMB <= 0 || vm.GuestID == "" {
			return fmt.Errorf("vms[%d] (%s): numCPU, memoryMB and guestId are required", i, vm.Name)
		}
	}
	return nil
}

// newShapedModel creates an empty vCenter model (service content only) for apply to fill.
func newShapedModel() (*simulator.Model, error) {
	model := simulator.VPX()
	model.Datacenter = 0
	model.Cluster = 0
	model.ClusterHost = 0
	model.Host = 0
	model.Machine = 0
	model.Datastore = 0
	model.Portgroup = 0
	return model, model.Create()
}

// apply builds the shape through the vSphere API (an in-process client of the simulator),
// so that every derived property (runtime.host, host.vm, datastore.vm, summaries, custom
// values) is maintained by the simulator itself. Only what the API cannot set is written
// into the model directly: host hardware, datastore sizes and guest OS full names.
// Returns the temp dirs backing the datastores, for removal on exit.
func (s *Shape) apply(ctx context.Context, model *simulator.Model) ([]string, error) {
	c, err := vim25.NewClient(ctx, model.Service)
	if err != nil {
		return nil, err
	}
	dc, err := object.NewRootFolder(c).CreateDatacenter(ctx, s.Datacenter)
	if err != nil {
		return nil, fmt.Errorf("creating datacenter %s: %v", s.Datacenter, err)
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, err
	}
	cluster, err := folders.HostFolder.CreateCluster(ctx, s.Cluster, types.ClusterConfigSpecEx{})
	if err != nil {
		return nil, fmt.Errorf("creating cluster %s: %v", s.Cluster, err)
	}

	hosts := map[string]*object.HostSystem{}
	var hostOrder []*object.HostSystem
	for _, h := range s.Hosts {
		task, err := cluster.AddHost(ctx, types.HostConnectSpec{HostName: h.Name}, true, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("adding host %s: %v", h.Name, err)
		}
		info, err := task.WaitForResult(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("adding host %s: %v", h.Name, err)
		}
		host := object.NewHostSystem(c, info.Result.(types.ManagedObjectReference))
		hosts[h.Name] = host
		hostOrder = append(hostOrder, host)
		setHostHardware(host.Reference(), h)
	}
	recomputeClusterSummary(cluster.Reference())

	var dirs []string
	datastores := map[string]types.ManagedObjectReference{}
	for _, d := range s.Datastores {
		dir, err := ioutil.TempDir("", "mangrove-vcsim-"+d.Name+"-")
		if err != nil {
			return dirs, err
		}
		dirs = append(dirs, dir)
		ref, err := createSharedDatastore(ctx, d.Name, dir, hostOrder)
		if err != nil {
			return dirs, fmt.Errorf("creating datastore %s: %v", d.Name, err)
		}
		datastores[d.Name] = ref
	}

	pool, err := cluster.ResourcePool(ctx)
	if err != nil {
		return dirs, err
	}
	created := map[string]types.ManagedObjectReference{}
	for _, spec := range s.VMs {
		dsName := spec.Datastore
		if dsName == "" {
			dsName = s.Datastores[0].Name
		}
		ref, err := createVM(ctx, c, folders.VmFolder, pool, hosts[spec.Host], datastores[dsName], dsName, spec)
		if err != nil {
			return dirs, fmt.Errorf("creating VM %s: %v", spec.Name, err)
		}
		created[spec.Name] = ref
	}

	if err := s.setFields(ctx, c, created); err != nil {
		return dirs, err
	}
	// Sizes last: creating VM files must not be followed by anything that re-reads the
	// backing directory's file system (RefreshDatastore does).
	for _, d := range s.Datastores {
		setDatastoreSize(datastores[d.Name], d)
	}
	return dirs, s.verify(hosts, created)
}

func setHostHardware(ref types.ManagedObjectReference, h ShapeHost) {
	host := simulator.Map.Get(ref).(*simulator.HostSystem)
	simulator.Map.WithLock(host, func() {
		if h.Cpus > 0 {
			host.Summary.Hardware.NumCpuCores = h.Cpus
			host.Summary.Hardware.NumCpuThreads = 2 * h.Cpus
			host.Hardware.CpuInfo.NumCpuCores = h.Cpus
			host.Hardware.CpuInfo.NumCpuThreads = 2 * h.Cpus
			host.Hardware.CpuInfo.NumCpuPackages = 2
			host.Summary.Hardware.NumCpuPkgs = 2
		}
		if h.MemoryMB > 0 {
			host.Summary.Hardware.MemorySize = h.MemoryMB << 20
			host.Hardware.MemorySize = h.MemoryMB << 20
		}
	})
}

// recomputeClusterSummary redoes the cluster totals the simulator summed when each host
// joined, since setHostHardware changed the hosts afterwards.
func recomputeClusterSummary(ref types.ManagedObjectReference) {
	cluster := simulator.Map.Get(ref).(*simulator.ClusterComputeResource)
	simulator.Map.WithLock(cluster, func() {
		s := cluster.Summary.GetComputeResourceSummary()
		s.TotalCpu, s.TotalMemory, s.NumCpuCores, s.NumCpuThreads, s.EffectiveCpu, s.EffectiveMemory = 0, 0, 0, 0, 0, 0
		for _, h := range cluster.Host {
			host := simulator.Map.Get(h).(*simulator.HostSystem)
			hw := host.Summary.Hardware
			s.TotalCpu += hw.CpuMhz * int32(hw.NumCpuCores)
			s.TotalMemory += hw.MemorySize
			s.NumCpuCores += hw.NumCpuCores
			s.NumCpuThreads += hw.NumCpuThreads
			s.EffectiveCpu += hw.CpuMhz * int32(hw.NumCpuCores)
			s.EffectiveMemory += hw.MemorySize >> 20 // effectiveMemory is in MB
		}
	})
}

// createSharedDatastore mounts one directory as datastore `name` on every host, as a SAN
// datastore is in a real cluster. The simulator's CreateLocalDatastore registers a new
// object per host under the same reference (the last wins, with only its own mount, and the
// folder lists it once per host); fixDatastores repairs that.
func createSharedDatastore(ctx context.Context, name, dir string, hosts []*object.HostSystem) (types.ManagedObjectReference, error) {
	var ref types.ManagedObjectReference
	for _, host := range hosts {
		dss, err := host.ConfigManager().DatastoreSystem(ctx)
		if err != nil {
			return ref, err
		}
		ds, err := dss.CreateLocalDatastore(ctx, name, dir)
		if err != nil {
			return ref, err
		}
		ref = ds.Reference()
	}
	fixDatastores()
	return ref, nil
}

// fixDatastores makes each datastore listed once in its folder and mounted on every host
// that lists it.
func fixDatastores() {
	for _, e := range simulator.Map.All("Folder") {
		folder := e.(*simulator.Folder)
		simulator.Map.WithLock(folder, func() {
			seen := map[types.ManagedObjectReference]bool{}
			kept := folder.ChildEntity[:0]
			for _, child := range folder.ChildEntity {
				if child.Type == "Datastore" && seen[child] {
					continue
				}
				seen[child] = true
				kept = append(kept, child)
			}
			folder.ChildEntity = kept
		})
	}
	mounts := map[types.ManagedObjectReference][]types.DatastoreHostMount{}
	for _, e := range simulator.Map.All("HostSystem") {
		host := e.(*simulator.HostSystem)
		for _, ds := range host.Datastore {
			mounts[ds] = append(mounts[ds], types.DatastoreHostMount{
				Key: host.Self,
				MountInfo: types.HostMountInfo{
					AccessMode: string(types.HostMountModeReadWrite),
					Mounted:    types.NewBool(true),
					Accessible: types.NewBool(true),
				},
			})
		}
	}
	for ref, m := range mounts {
		ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
		if !ok {
			continue
		}
		sort.Slice(m, func(i, j int) bool { return m[i].Key.Value < m[j].Key.Value })
		simulator.Map.WithLock(ds, func() { ds.Host = m })
	}
}

func setDatastoreSize(ref types.ManagedObjectReference, d ShapeDatastore) {
	ds := simulator.Map.Get(ref).(*simulator.Datastore)
	simulator.Map.WithLock(ds, func() {
		ds.Summary.Capacity = d.CapacityBytes
		ds.Summary.FreeSpace = d.FreeBytes
		info := ds.Info.GetDatastoreInfo()
		info.FreeSpace = d.FreeBytes
		info.MaxFileSize = d.FreeBytes
		info.MaxMemoryFileSize = d.FreeBytes
		// The VMFS volume details pyvmomi shows under info.vmfs are not modelled for
		// local datastores; capacity lives in the summary.
	})
}

func createVM(ctx context.Context, c *vim25.Client, folder *object.Folder, pool *object.ResourcePool,
	host *object.HostSystem, ds types.ManagedObjectReference, dsName string, spec ShapeVM) (types.ManagedObjectReference, error) {
	var none types.ManagedObjectReference
	config := types.VirtualMachineConfigSpec{
		Name:     spec.Name,
		GuestId:  spec.GuestID,
		NumCPUs:  spec.NumCPU,
		MemoryMB: spec.MemoryMB,
		Files:    &types.VirtualMachineFileInfo{VmPathName: "[" + dsName + "]"},
	}
	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return none, err
	}
	ide, err := devices.CreateIDEController()
	if err != nil {
		return none, err
	}
	cdrom, err := devices.CreateCdrom(ide.(*types.VirtualIDEController))
	if err != nil {
		return none, err
	}
	devices = append(devices, scsi, ide, cdrom)
	if spec.DiskGB > 0 {
		disk := devices.CreateDisk(scsi.(types.BaseVirtualController), ds,
			config.Files.VmPathName+" "+path.Join(spec.Name, "disk1.vmdk"))
		disk.CapacityInKB = spec.DiskGB << 20
		disk.CapacityInBytes = spec.DiskGB << 30
		devices = append(devices, disk)
	}
	nic := esx.EthernetCard
	devices = append(devices, &nic)
	config.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return none, err
	}
	task, err := folder.CreateVM(ctx, config, pool, host)
	if err != nil {
		return none, err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return none, err
	}
	ref := info.Result.(types.ManagedObjectReference)
	if spec.PoweredOn {
		task, err := object.NewVirtualMachine(c, ref).PowerOn(ctx)
		if err != nil {
			return none, err
		}
		if err := task.Wait(ctx); err != nil {
			return none, fmt.Errorf("powering on: %v", err)
		}
	}
	if spec.GuestFullName != "" {
		// The simulator copies guestId into guestFullName; vCenter shows the OS's name.
		vm := simulator.Map.Get(ref).(*simulator.VirtualMachine)
		simulator.Map.WithLock(vm, func() {
			vm.Config.GuestFullName = spec.GuestFullName
			vm.Summary.Config.GuestFullName = spec.GuestFullName
			if spec.PoweredOn {
				vm.Guest.GuestId = spec.GuestID
				vm.Guest.GuestFullName = spec.GuestFullName
				vm.Summary.Guest.GuestFullName = spec.GuestFullName
			}
		})
	}
	return ref, nil
}

// setFields defines one VM custom field per key the shape uses and sets the values, through
// the CustomFieldsManager as vCenter administrators do.
func (s *Shape) setFields(ctx context.Context, c *vim25.Client, vms map[string]types.ManagedObjectReference) error {
	keys := map[string]bool{}
	for _, vm := range s.VMs {
		for k := range vm.Fields {
			keys[k] = true
		}
	}
	if len(keys) == 0 {
		return nil
	}
	fields, err := object.GetCustomFieldsManager(c)
	if err != nil {
		return err
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	defs := map[string]int32{}
	for _, k := range sorted {
		def, err := fields.Add(ctx, k, "VirtualMachine", nil, nil)
		if err != nil {
			return fmt.Errorf("defining custom field %s: %v", k, err)
		}
		defs[k] = def.Key
	}
	for _, vm := range s.VMs {
		for _, k := range sortedKeys(vm.Fields) {
			if err := fields.Set(ctx, vms[vm.Name], defs[k], vm.Fields[k]); err != nil {
				return fmt.Errorf("setting %s on VM %s: %v", k, vm.Name, err)
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// verify checks that every VM runs where the shape placed it and that each host's vm list
// holds exactly its VMs, so clients reading either side see the same placement.
func (s *Shape) verify(hosts map[string]*object.HostSystem, vms map[string]types.ManagedObjectReference) error {
	want := map[types.ManagedObjectReference]map[types.ManagedObjectReference]bool{}
	for _, spec := range s.VMs {
		ref := vms[spec.Name]
		vm := simulator.Map.Get(ref).(*simulator.VirtualMachine)
		h := hosts[spec.Host].Reference()
		if vm.Runtime.Host == nil || *vm.Runtime.Host != h {
			return fmt.Errorf("VM %s: runtime.host is %v, the shape places it on %s", spec.Name, vm.Runtime.Host, spec.Host)
		}
		if want[h] == nil {
			want[h] = map[types.ManagedObjectReference]bool{}
		}
		want[h][ref] = true
	}
	for name, host := range hosts {
		h := simulator.Map.Get(host.Reference()).(*simulator.HostSystem)
		if len(h.Vm) != len(want[host.Reference()]) {
			return fmt.Errorf("host %s lists %d VMs, the shape places %d there", name, len(h.Vm), len(want[host.Reference()]))
		}
		for _, ref := range h.Vm {
			if !want[host.Reference()][ref] {
				return fmt.Errorf("host %s lists VM %s, which the shape places elsewhere", name, ref.Value)
			}
		}
	}
	return nil
}

// removeDirs deletes the datastores' backing directories.
func removeDirs(dirs []string) {
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}
