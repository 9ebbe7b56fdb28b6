// VirtualMachine.ExportVm for the simulator.
//
// govmomi's simulator (0.24.2 as Debian ships it, and upstream too) leases disks only for
// ImportVApp: a VirtualMachine has no ExportVm method. Mangrove refreshes DR images by
// exporting VMs, so the launcher adds the method here, following the vSphere API reference:
//
//   - ExportVm(_this=VirtualMachine) returns an HttpNfcLease moref, or faults
//     InvalidPowerState when the VM is not powered off (vSphere exports only stopped VMs);
//   - the lease is the simulator's own HttpNfcLease object (state `ready`), so reading it
//     with the PropertyCollector and HttpNfcLeaseProgress/Complete/Abort are vcsim's;
//   - `info.deviceUrl` has one entry per virtual disk, with `*` as the host the way ESXi
//     writes it (the client puts the vCenter's host there), `disk=true` and the file size;
//   - a disk is downloaded with GET on that URL, with the session cookie of the session that
//     holds the lease; after Complete or Abort the URL answers 404.
//
// The bytes served are the disk's file in the simulated datastore, whatever it holds (vcsim
// creates empty files for new disks).
//
// How the method reaches the simulator without changing its types: the simulator dispatches
// on the managed object found for `_this`, and its VirtualMachine type cannot gain a method
// from outside its package. So the HTTP layer sends an ExportVm call for an existing VM to a
// companion object (`MangroveVmExport:<vm moid>`) whose only method is ExportVm; every other
// call is passed through untouched.
package main

import (
	"bytes"
	"fmt"
	"io/ioutil"
	"log"
	"net/http"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	exporterType = "MangroveVmExport"
	exportPrefix = "/mangrove-nfc/"
)

// The `_this` of an ExportVm call: its type attribute and the VM moid.
var exportThis = regexp.MustCompile(`(<ExportVm\b[^>]*>\s*<_this\b[^>]*\btype=")VirtualMachine("[^>]*>)([^<]+)(</_this>)`)

// exportedDisk is one file a live lease serves.
type exportedDisk struct {
	file    string
	session string
	holder  *simulator.Session
	lease   types.ManagedObjectReference
}

var exports sync.Map // "<lease token>/<name>" -> exportedDisk

// vmExporter carries ExportVm for one VM.
type vmExporter struct {
	Self types.ManagedObjectReference
}

func (e *vmExporter) Reference() types.ManagedObjectReference { return e.Self }

func exportFault(msg string, fault types.BaseMethodFault) soap.HasFault {
	return &methods.ExportVmBody{Fault_: simulator.Fault(msg, fault)}
}

// ExportVm leases the VM's disks for download.
func (e *vmExporter) ExportVm(ctx *simulator.Context, req *types.ExportVm) soap.HasFault {
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: e.Self.Value}
	vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return exportFault("managed object not found: "+ref.String(), &types.ManagedObjectNotFound{Obj: ref})
	}
	var state types.VirtualMachinePowerState
	var devices object.VirtualDeviceList
	var datastores []types.ManagedObjectReference
	ctx.WithLock(vm, func() {
		state = vm.Runtime.PowerState
		devices = object.VirtualDeviceList(vm.Config.Hardware.Device)
		datastores = vm.Datastore
	})
	if state != types.VirtualMachinePowerStatePoweredOff {
		return exportFault("The attempted operation cannot be performed in the current state ("+string(state)+").",
			&types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: state})
	}

	lease := simulator.NewHttpNfcLease(ctx, ref)
	lease.Info.Lease = lease.Self
	// Session objects are named "session[<session>]<uuid>"; the uuid alone is URL-safe.
	token := lease.Self.Value[strings.LastIndex(lease.Self.Value, "]")+1:]
	var urls []types.HttpNfcLeaseDeviceUrl
	var totalKB int64
	for i, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		backing, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		file, err := resolveDatastorePath(ctx, datastores, backing.GetVirtualDeviceFileBackingInfo().FileName)
		if err != nil {
			log.Printf("ExportVm %s: %v", ref.Value, err)
			return exportFault(err.Error(), &types.FileNotFound{FileFault: types.FileFault{File: backing.GetVirtualDeviceFileBackingInfo().FileName}})
		}
		var size int64
		if st, err := os.Stat(file); err == nil {
			size = st.Size()
		}
		name := fmt.Sprintf("disk-%d.vmdk", i)
		exports.Store(token+"/"+name, exportedDisk{file: file, session: ctx.Session.Key, holder: ctx.Session, lease: lease.Self})
		totalKB += disk.CapacityInKB
		urls = append(urls, types.HttpNfcLeaseDeviceUrl{
			Key:      fmt.Sprintf("/%s/%s", ref.Value, devices.Name(disk)),
			Url:      "https://*" + exportPrefix + token + "/" + name,
			Disk:     types.NewBool(true),
			TargetId: name,
			FileSize: size,
		})
	}
	lease.Info.DeviceUrl = urls
	lease.Info.TotalDiskCapacityInKB = totalKB
	log.Printf("ExportVm %s: lease %s with %d disk(s)", ref.Value, lease.Self.Value, len(urls))
	return &methods.ExportVmBody{Res: &types.ExportVmResponse{Returnval: lease.Self}}
}

// resolveDatastorePath turns "[ds] dir/file.vmdk" into the simulated datastore's local path.
func resolveDatastorePath(ctx *simulator.Context, datastores []types.ManagedObjectReference, name string) (string, error) {
	var p object.DatastorePath
	if !p.FromString(name) {
		return "", fmt.Errorf("not a datastore path: %q", name)
	}
	for _, ref := range datastores {
		ds, ok := ctx.Map.Get(ref).(*simulator.Datastore)
		if ok && ds.Name == p.Datastore {
			return path.Join(ds.Info.GetDatastoreInfo().Url, p.Path), nil
		}
	}
	return "", fmt.Errorf("datastore %q of %q is not one of the VM's", p.Datastore, name)
}

// serveExport answers a disk download of a live lease, for the session holding it.
func serveExport(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, exportPrefix)
	v, ok := exports.Load(key)
	if !ok {
		http.NotFound(w, r)
		return
	}
	d := v.(exportedDisk)
	if d.holder.Get(d.lease) == nil {
		// Completed or aborted: the lease is gone, and so are its URLs.
		exports.Delete(key)
		http.NotFound(w, r)
		return
	}
	cookie, err := r.Cookie(soap.SessionCookieName)
	if err != nil || cookie.Value != d.session {
		http.Error(w, "not authenticated for this lease", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	http.ServeFile(w, r, d.file)
}

// withExportVm routes ExportVm calls on existing VMs to their exporter, and serves the
// leases' disks; everything else goes to next unchanged.
func withExportVm(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, exportPrefix) {
			serveExport(w, r)
			return
		}
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/sdk") {
			next.ServeHTTP(w, r)
			return
		}
		body, err := ioutil.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if m := exportThis.FindSubmatch(body); m != nil {
			moid := string(m[3])
			vm := types.ManagedObjectReference{Type: "VirtualMachine", Value: moid}
			// An unknown VM is left to the simulator, which faults ManagedObjectNotFound.
			if simulator.Map.Get(vm) != nil {
				ref := types.ManagedObjectReference{Type: exporterType, Value: moid}
				if simulator.Map.Get(ref) == nil {
					simulator.Map.Put(&vmExporter{Self: ref})
				}
				body = exportThis.ReplaceAll(body, []byte("${1}"+exporterType+"${2}${3}${4}"))
			}
		}
		r.Body = ioutil.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}
