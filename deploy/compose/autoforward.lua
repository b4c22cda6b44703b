-- Upstream Orthanc: send every instance it receives on to the deid node (modality "deid").
function OnStoredInstance(instanceId, tags, metadata, origin)
  if origin["RequestOrigin"] ~= "Lua" then
    SendToModality(instanceId, "deid")
  end
end
